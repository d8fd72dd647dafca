"""A JUnit XML report of a batch (one test case per run and per gate check), for CI systems."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tabcli.batch.gates import GateResult
from tabcli.batch.runner import Outcome

__all__ = ["write_junit"]


def write_junit(outcomes: list[Outcome], gate_results: list[GateResult], path: Path) -> Path:
    """Write a JUnit XML file with two suites: ``runs`` and ``gates``.

    A failed or interrupted run is a ``<failure>`` with its error; a run skipped by ``--resume``
    is reported as passed (it completed earlier) with a ``resumed`` property. Each gate check is
    a test case named after the gate and config, failing with the compared values.
    """
    suites = ET.Element("testsuites", name="tabcli batch")
    runs = ET.SubElement(suites, "testsuite", name="runs", tests=str(len(outcomes)),
                         failures=str(sum(o.status != "completed" for o in outcomes)),
                         time=f"{sum(o.seconds for o in outcomes):.3f}")
    for outcome in outcomes:
        case = ET.SubElement(runs, "testcase", classname=f"runs.{outcome.run.config_id}",
                             name=f"seed-{outcome.run.seed}", time=f"{outcome.seconds:.3f}")
        if outcome.status != "completed":
            failure = ET.SubElement(case, "failure", message=f"run {outcome.status}", type=outcome.status)
            failure.text = outcome.error or ""
        if outcome.skipped:
            properties = ET.SubElement(case, "properties")
            ET.SubElement(properties, "property", name="resumed", value="true")
        ET.SubElement(case, "system-out").text = f"run directory: {outcome.run.run_dir}\nlog: {outcome.run.log}"
    gates = ET.SubElement(suites, "testsuite", name="gates", tests=str(len(gate_results)),
                          failures=str(sum(not r.passed for r in gate_results)))
    for result in gate_results:
        case = ET.SubElement(gates, "testcase", classname="gates", name=f"{result.gate.text} [{result.config or 'batch'}]")
        if not result.passed:
            ET.SubElement(case, "failure", message=result.message, type="gate").text = result.message
    ET.indent(suites)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
    return path
