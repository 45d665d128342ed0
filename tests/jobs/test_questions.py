"""The job's questions: what each trigger asks, what Copier refuses, the typed trigger table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.context import EVENT_FIELDS, SERVICE_QUESTIONS, TRIGGERS, other_jobs
from extensions.filters import check_bucket, check_cron, check_object_key, check_timezone
from tests.helpers import copy_template

COPIER_YML: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "copier.yml").read_text(encoding="utf-8")
)


# --- Validators -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["partner-drops", "a.b-c", "abc", "x" * 63])
def test_bucket_names_s3_accepts_pass(value: str) -> None:
    assert check_bucket(value, "bucket") == ""


@pytest.mark.parametrize(
    "value", ["ab", "Partner", "under_score", "-lead", "trail-", "a..b", "192.168.0.1", "x" * 64]
)
def test_bucket_names_s3_refuses_are_refused_naming_the_question(value: str) -> None:
    assert check_bucket(value, "bucket").startswith("bucket: ")


@pytest.mark.parametrize("value", ["0 2 * * *", "*/15 * * * 1-5", "0 0 1 JAN,JUL ?", "@daily"])
def test_cron_schedules_pass(value: str) -> None:
    assert check_cron(value, "schedule") == ""


@pytest.mark.parametrize("value", ["0 2 * *", "0 2 * * * *", "every day", "0 2 * * $", ""])
def test_other_schedules_are_refused(value: str) -> None:
    assert check_cron(value, "schedule").startswith("schedule: ")


def test_time_zones_are_iana_names() -> None:
    assert check_timezone("Europe/Paris", "timezone") == ""
    assert check_timezone("UTC", "timezone") == ""
    for wrong in ("Mars/Olympus", "CEST+2", "../../etc/passwd", ""):
        assert check_timezone(wrong, "timezone").startswith("timezone: "), wrong


def test_object_keys_are_relative_single_lines() -> None:
    assert check_object_key("incoming/latest.csv", "object_key") == ""
    assert check_object_key("", "prefix", True) == ""
    assert check_object_key("", "object_key").startswith("object_key: ")
    assert check_object_key("/abs/key", "object_key").startswith("object_key: ")
    assert check_object_key("two\nlines", "prefix", True).startswith("prefix: ")


# --- copier.yml and the trigger table -----------------------------------------------------------


def test_every_trigger_question_is_a_service_question_asked_only_for_jobs() -> None:
    trigger_questions = {q for trigger in TRIGGERS.values() for q in trigger.questions}
    assert trigger_questions == {"bucket", "prefix", "object_key", "schedule", "timezone"}
    names = list(COPIER_YML)
    for question in [*trigger_questions, "event_bus"]:
        assert question in SERVICE_QUESTIONS, question
        assert "kind == 'job'" in COPIER_YML[question]["when"], question
        assert COPIER_YML[question].get("help"), question
        assert "default" in COPIER_YML[question], question
        # Asked right after the trigger, before the image.
        assert names.index("trigger") < names.index(question) < names.index("image_repository")
    for question in trigger_questions:
        assert "validator" in COPIER_YML[question], question
        asking = {key for key, trigger in TRIGGERS.items() if question in trigger.questions}
        assert all(f"'{key}'" in COPIER_YML[question]["when"] for key in asking), question


def test_the_trigger_table_covers_copiers_choices_and_the_job_contract() -> None:
    assert set(TRIGGERS) == set(COPIER_YML["trigger"]["choices"].values())
    for key, trigger in TRIGGERS.items():
        parameters = [field.parameter for field in trigger.fields]
        assert set(parameters) <= set(EVENT_FIELDS), key
        for field in trigger.fields:
            assert bool(field.data_key) != bool(field.context_key), (key, field)
            required = field.parameter in {"bucket", "key"}
            assert (field.default is None) is required, (key, field)
        # The object comes from the event, or from the questions (calendar).
        from_event = {"bucket", "key"} <= set(parameters)
        assert from_event or {"bucket", "object_key"} <= set(trigger.questions), key
        assert bool(trigger.lock_template) is from_event, key


def test_other_jobs_reads_the_descriptors_of_the_repository(tmp_path: Path) -> None:
    def descriptor(name: str, kind: str) -> None:
        folder = tmp_path / "apps" / name
        folder.mkdir(parents=True)
        document = {"metadata": {"name": name}, "spec": {"type": kind}}
        (folder / "catalog-info.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")

    descriptor("api", "service")
    descriptor("import", "job")
    descriptor("report", "job")
    (tmp_path / "apps" / "broken").mkdir()
    (tmp_path / "apps" / "broken" / "catalog-info.yaml").write_text("{", encoding="utf-8")
    assert other_jobs(tmp_path, "import") == ("report",)
    assert other_jobs(tmp_path, "new") == ("import", "report")


# --- Copier, end to end -------------------------------------------------------------------------


@pytest.fixture
def copy_job(tmp_path: Path) -> Callable[..., Path]:
    def copy(**answers: Any) -> Path:
        data = {"project_slug": "nightly-report", "kind": "job", **answers}
        return copy_template(tmp_path / "project", **data)

    return copy


@pytest.mark.parametrize(
    ("answers", "question"),
    [
        ({"trigger": "calendar", "schedule": "nightly"}, "schedule"),
        ({"trigger": "calendar", "timezone": "Europe/Pariss"}, "timezone"),
        ({"trigger": "s3", "bucket": "Partner_Drops"}, "bucket"),
        ({"trigger": "s3", "prefix": "/incoming"}, "prefix"),
        ({"trigger": "calendar", "object_key": ""}, "object_key"),
    ],
)
def test_copier_refuses_a_wrong_trigger_answer_naming_the_question(
    copy_job: Callable[..., Path], answers: dict[str, str], question: str
) -> None:
    with pytest.raises(ValueError, match=question):
        copy_job(**answers)


def test_a_calendar_jobs_answers_reach_its_chart(copy_job: Callable[..., Path]) -> None:
    project = copy_job(
        trigger="calendar",
        schedule="30 1 * * 1-5",
        timezone="Europe/Paris",
        bucket="reports",
        object_key="exports/daily.csv",
    )
    answers = yaml.safe_load(
        (project / ".copier-answers.nightly-report.yml").read_text(encoding="utf-8")
    )
    assert answers["event_bus"] is True  # the repository's first job
    assert "prefix" not in answers
    values = yaml.safe_load(
        (project / "deploy/charts/nightly-report/values.yaml").read_text(encoding="utf-8")
    )
    assert values["trigger"] == {
        "type": "calendar",
        "calendar": {
            "schedule": "30 1 * * 1-5",
            "timezone": "Europe/Paris",
            "bucket": "reports",
            "key": "exports/daily.csv",
        },
    }
    assert values["eventBus"]["create"] is True
    assert [p["parameter"] for p in values["eventParameters"]] == ["event-time"]
