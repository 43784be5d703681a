import numpy as np
import pytest
import soundfile as sf

from convtasnet_hailo.audio.io import load_audio, pcm_safe_gain, save_audio
from convtasnet_hailo.errors import UserError
from tests.conftest import speech_like


def test_stereo_is_downmixed_and_resampled_with_notes(tmp_path):
    left, right = speech_like(1.0, 16000, 1), speech_like(1.0, 16000, 2)
    sf.write(tmp_path / "st.wav", np.stack([left, right], axis=1), 16000)
    audio = load_audio(tmp_path / "st.wav", 8000)
    assert audio.wav.dtype == np.float32 and abs(len(audio.wav) - 8000) <= 1
    assert audio.notes == ("downmixed 2 channels to mono", "resampled 16000 Hz -> 8000 Hz")
    assert audio.source_rate == 16000 and audio.source_channels == 2


def test_resampling_keeps_a_tone():
    from convtasnet_hailo.audio.io import resample

    t = np.arange(16000) / 16000
    out = resample(np.sin(2 * np.pi * 440 * t).astype(np.float32), 16000, 8000)
    expected = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    assert np.abs(out[200:-200] - expected[200:-200]).max() < 1e-2


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b"RIFF garbage that is not audio"), "cannot read"),
        (lambda p: sf.write(p, np.zeros((0, 1), np.float32), 8000), "holds no samples"),
        (lambda p: sf.write(p, np.zeros(800, np.float32), 8000), "is silent"),
        (lambda p: sf.write(p, np.random.default_rng(0).standard_normal((800, 3)) * 0.1, 8000), "has 3 channels"),
    ],
)
def test_bad_audio_gets_a_clear_error(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(UserError, match=message):
        load_audio(path, 8000)


def test_float_output_is_exact_and_pcm_never_clips_silently(tmp_path):
    wav = np.array([0.1234567, -1.5, 2.0, 0.0], np.float32)
    save_audio(tmp_path / "f.wav", wav, 8000, "FLOAT")
    np.testing.assert_array_equal(sf.read(tmp_path / "f.wav", dtype="float32")[0], wav)
    with pytest.raises(ValueError, match="PCM_16 would clip"):
        save_audio(tmp_path / "p.wav", wav, 8000, "PCM_16")
    assert not list(tmp_path.glob("*p.wav*"))  # nothing half-written
    assert pcm_safe_gain(wav, "FLOAT") == 1.0 and pcm_safe_gain(wav * 0.25, "PCM_16") == 1.0
    gain = pcm_safe_gain(wav, "PCM_16")
    save_audio(tmp_path / "p.wav", wav * gain, 8000, "PCM_16")
    read = sf.read(tmp_path / "p.wav", dtype="float32")[0]
    np.testing.assert_allclose(read, wav * 0.99 / 2.0, atol=1 / 32768)  # scaled together, shape kept
    with pytest.raises(UserError, match="unknown --subtype"):
        save_audio(tmp_path / "x.wav", wav, 8000, "MP3")


def test_unreadable_file_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    """Permission bits do not stop root (CI and these machines run as root), so the OS refusal is
    stood in for by the error soundfile raises on it."""
    import soundfile

    path = tmp_path / "locked.wav"
    sf.write(path, np.full(800, 0.1, np.float32), 8000)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(soundfile, "SoundFile", refuse)
    with pytest.raises(UserError, match="permission denied; make it readable"):
        load_audio(path, 8000)
