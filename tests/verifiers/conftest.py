"""Prints the figures the real-data tests measured (self-check rates, label agreement) after every run."""

import realdata


def pytest_terminal_summary(terminalreporter) -> None:
    if realdata.REPORT_LINES:
        terminalreporter.section("verifier accuracy on real data")
        for line in realdata.REPORT_LINES:
            terminalreporter.write_line(line)
