"""The command line: exit codes, one-line errors, files written."""

import subprocess
import sys

import pytest

from convtasnet_hailo.cli import main


def test_parity_tiny_model_writes_run_folder(tmp_path, capsys):
    code = main(["parity", "full-chain", "--random-preset", "tiny", "--tile-w", "16", "--length", "200", "333",
                 "--runs-dir", str(tmp_path)])
    assert code == 0
    (run_dir,) = tmp_path.iterdir()
    assert (run_dir / "hef_tiled_full_chain_summary.tsv").exists()
    assert len(list(run_dir.glob("*.json"))) == 2
    assert "2/2 case(s) all_close" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["parity", "masker", "--backend", "nope"], "unknown backend 'nope'"),
    (["parity", "masker", "--model", "/no/such/model.pth"], "does not exist"),
    (["parity", "full-chain", "--random-preset", "tiny", "--length", "3"], "shorter than one encoder window"),
    (["parity", "full-chain", "--random-preset", "tiny", "--length", "300", "--seconds", "1"], "pass one of them"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert main(argv + ["--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_flag_values_are_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["parity", "masker", "--tile-w", "0"])
    assert exc.value.code == 2 and "must be >= 1" in capsys.readouterr().err


def test_doctor_reports_every_toolchain(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for name in ("torch", "onnxruntime", "Hailo Dataflow Compiler", "HailoRT", "Hailo device", "torch_proxy"):
        assert name in out
    assert "fix:" in out  # the SDK is not installable here, so a fix is printed


def test_console_script_help_is_fast_and_works():
    out = subprocess.run([sys.executable, "-m", "convtasnet_hailo.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "parity" in out.stdout
    probe = subprocess.run([sys.executable, "-c", "import sys, convtasnet_hailo.cli; print('torch' in sys.modules)"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "False"  # heavy imports wait for the command
