"""What the chaos suite reports of the platform it drives, read from its data dir."""

from __future__ import annotations

from tools.chaos.platform import Platform


def test_broker_log_tail_is_the_last_lines_or_nothing(tmp_path):
    platform = Platform(tmp_path, tmp_path / "platform.log")
    assert platform.broker_log_tail() == ""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "tansu.log").write_text("".join(f"line {i}\n" for i in range(20)))
    assert platform.broker_log_tail(3) == "line 17\nline 18\nline 19"
