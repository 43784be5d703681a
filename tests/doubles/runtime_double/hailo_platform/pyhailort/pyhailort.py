"""TEST DOUBLE of ``hailo_platform.pyhailort.pyhailort``: where the binding's exception classes live.

HailoRT's package re-exports only ``HailoRTException``, ``HailoRTStreamAbortedByUser`` and
``HailoCommunicationClosedException`` at top level (``hailo_platform/__init__.py``, both branches);
every other class is reachable only here. ``ExceptionWrapper.create_exception_from_status`` maps a
status to a class and a generic text (``pyhailort.py``), which ``RAISED`` copies for the statuses
the double raises; any other status becomes ``HailoRTException("libhailort failed with error: N
(NAME)")``, HAILO_HEF_NOT_SUPPORTED (92) included.
"""

from __future__ import annotations


class HailoRTException(Exception):
    pass


class HailoRTTimeout(HailoRTException):
    pass


class HailoRTStreamAbortedByUser(HailoRTException):
    pass


class HailoCommunicationClosedException(HailoRTException):
    pass


class HailoRTInvalidOperationException(HailoRTException):
    pass


class HailoRTInvalidArgumentException(HailoRTException):
    pass


class HailoRTNotFoundException(HailoRTException):
    pass


class HailoRTInvalidHEFException(HailoRTException):
    pass


class HailoRTNetworkGroupNotActivatedException(HailoRTException):
    pass


class HailoRTHEFNotCompatibleWithDevice(HailoRTException):
    pass


#: pyhailort.py ExceptionWrapper: status -> the class and text the Python caller sees
RAISED = {
    "HAILO_TIMEOUT": (HailoRTTimeout, "Received a timeout - hailort has failed because a timeout had occurred"),
    "HAILO_INVALID_OPERATION": (
        HailoRTInvalidOperationException,
        "Invalid operation. See hailort.log for more information",
    ),
    "HAILO_INVALID_ARGUMENT": (
        HailoRTInvalidArgumentException,
        "Invalid argument. See hailort.log for more information",
    ),
    "HAILO_NOT_FOUND": (HailoRTNotFoundException, "Item not found. See hailort.log for more information"),
    "HAILO_INVALID_HEF": (HailoRTInvalidHEFException, "Invalid HEF. See hailort.log for more information"),
    "HAILO_NETWORK_GROUP_NOT_ACTIVATED": (HailoRTNetworkGroupNotActivatedException, "Network group is not activated"),
    "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE": (
        HailoRTHEFNotCompatibleWithDevice,
        "HEF file is not compatible with device. See hailort.log for more information",
    ),
}
#: hailort.h HAILO_STATUS__X: the numbers of the statuses the double raises
CODES = {
    "HAILO_INVALID_ARGUMENT": 2,
    "HAILO_TIMEOUT": 4,
    "HAILO_INVALID_OPERATION": 6,
    "HAILO_NOT_IMPLEMENTED": 7,
    "HAILO_INVALID_HEF": 26,
    "HAILO_NOT_FOUND": 61,
    "HAILO_NETWORK_GROUP_NOT_ACTIVATED": 69,
    "HAILO_OUT_OF_PHYSICAL_DEVICES": 74,
    "HAILO_HEF_NOT_SUPPORTED": 92,
    "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE": 93,
}


def exception_from_status(status: str) -> HailoRTException:
    cls, text = RAISED.get(
        status, (HailoRTException, f"libhailort failed with error: {CODES.get(status, 0)} ({status})")
    )
    return cls(text)
