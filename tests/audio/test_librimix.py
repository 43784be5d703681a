import pytest

from convtasnet_hailo.audio.librimix import read_metadata, sources_beside
from convtasnet_hailo.errors import UserError
from tests.conftest import write_librimix_tree


def test_reader_and_layout(tmp_path):
    csv_path = write_librimix_tree(tmp_path, n=3)
    entries = read_metadata(csv_path)
    assert len(entries) == 3 and entries[0].length == 4000
    assert all(p.is_file() for e in entries for p in (e.mixture_path, *e.source_paths))
    assert sources_beside(entries[1].mixture_path) == entries[1].source_paths
    assert sources_beside(entries[1].source_paths[0]) is None  # not a mix_* folder


def test_relative_paths_resolve_against_the_tree(tmp_path):
    csv_path = write_librimix_tree(tmp_path, n=1)
    text = csv_path.read_text().replace(str(tmp_path / "Libri2Mix") + "/", "")
    csv_path.write_text(text)
    (entry,) = read_metadata(csv_path)
    assert entry.mixture_path.is_file()


def test_missing_columns_and_files(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("mixture_ID,mixture_path,length\na,b,3\n")
    with pytest.raises(UserError, match="lacks column\\(s\\) source_1_path, source_2_path"):
        read_metadata(bad)
    with pytest.raises(UserError, match="does not exist"):
        read_metadata(tmp_path / "none.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("mixture_ID,mixture_path,source_1_path,source_2_path,length\n")
    with pytest.raises(UserError, match="lists no mixtures"):
        read_metadata(empty)
