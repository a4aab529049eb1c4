"""FogVerse's logging classes write where and what FogVerse users expect."""

from __future__ import annotations

import csv
from pathlib import Path

from fogverse import CsvLogging, FogVerseLogging, Producer
from fogverse.logging import CSV_COLUMNS, FOGV_FILE


class Stage(CsvLogging, Producer):
    producer_topic = "unused"

    def __init__(self, logs: Path) -> None:
        CsvLogging.__init__(self, dirname=logs, add_header=["objects"])
        Producer.__init__(self)


def test_csv_logging_header_is_fogverse_columns_then_the_users(tmp_path: Path) -> None:
    stage = Stage(tmp_path)
    stage._log_data["objects"] = [3]  # FogVerse users filled a pandas row like this
    stage._write_row({**stage._log_data, "frame": 7})
    stage._csv.close()
    with (tmp_path / "log_Stage.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["asctime", "name", *CSV_COLUMNS, "objects"]
    assert rows[1][1] == "Stage"
    assert rows[1][2 + CSV_COLUMNS.index("frame")] == "7" and rows[1][-1] == "3"


def test_csv_logging_defaults_to_logs_beside_the_stage_module(tmp_path: Path) -> None:
    class Here(CsvLogging):
        pass

    logger = Here(dirname="logs-test-tmp")
    path = Path(__file__).parent / "logs-test-tmp" / "log_Here.csv"
    try:
        assert path.exists()
    finally:
        logger._csv.close()
        path.unlink()
        path.parent.rmdir()


def test_fogverse_logging_writes_csv_rows_and_a_text_log(tmp_path: Path) -> None:
    log = FogVerseLogging(name="cam", dirname=tmp_path, csv_header=["frame", "ms"],
                          level=FOGV_FILE)
    log.csv_log([1, 2.5])
    log.std_log("started %s", "cam")
    with (tmp_path / "log_csv_cam.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["asctime", "name", "frame", "ms"] and rows[1][2:] == ["1", "2.5"]
    assert "started cam" in (tmp_path / "log_file_cam.txt").read_text()
