"""The PCIe link the device cost model prices: Gen3 by default (the Raspberry Pi AI HAT+ is detected
at Gen 3 automatically; docs/hailo_facts.md, Hardware), stated with its source, and `--link` on
plan, bench and stream."""

import json

import pytest

from convtasnet_hailo.cli.main import build_parser
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.plan.cost_model import DEFAULT_LINK, DEFAULT_LINK_SOURCE, LINKS, DeviceModel


def test_the_default_link_is_gen3_and_the_record_states_why():
    assert DEFAULT_LINK == "gen3" and DeviceModel().link == "gen3"
    described = DeviceModel().describe()
    assert described["link"] == "gen3"
    assert described["link_default"] == {"link": "gen3", "source": DEFAULT_LINK_SOURCE}
    assert "AI HAT+" in DEFAULT_LINK_SOURCE and "docs/hailo_facts.md" in DEFAULT_LINK_SOURCE
    assert DeviceModel().bytes_per_second > DeviceModel(link="gen2").bytes_per_second
    with pytest.raises(UserError, match="--link 'gen4'"):
        DeviceModel(link="gen4")


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--random-preset", "tiny"],
        ["bench", "--random-preset", "tiny"],
        ["stream", "in.wav", "--out", "o"],
    ],
)
def test_plan_bench_and_stream_take_link_with_the_default_and_its_source_in_the_help(argv, capsys):
    parser = build_parser()
    assert parser.parse_args(argv).link == DEFAULT_LINK
    assert parser.parse_args([*argv, "--link", "gen2"]).link == "gen2"
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--link", "gen4"])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        parser.parse_args([argv[0], "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--link {gen2,gen3}" in text and "gen3 (default" in text and "AI HAT+" in text
    assert set(LINKS) == {"gen2", "gen3"}


def test_plan_prices_a_stream_on_the_link_given(tmp_path, capsys):
    from convtasnet_hailo.cli import main

    records = {}
    for link in ("gen2", "gen3"):
        out = tmp_path / f"{link}.json"
        argv = ["plan", "--random-preset", "full-8k-causal", "--hop-ms", "16", "--json", str(out)]
        assert main([*argv, "--link", link] if link == "gen2" else argv) == 0
        records[link] = json.loads(out.read_text())
    assert f"PCIe {'gen3'} x1" in capsys.readouterr().out
    text = {link: json.dumps(record) for link, record in records.items()}
    assert '"link": "gen2"' in text["gen2"] and '"link": "gen3"' in text["gen3"]
    assert DEFAULT_LINK_SOURCE in text["gen3"]
