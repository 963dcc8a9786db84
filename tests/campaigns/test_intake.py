"""Campaign intake as a table: what each input row becomes (pure, no servers)."""

from __future__ import annotations

import pytest

from taskflow.campaigns import intake
from taskflow.campaigns.ids import recipient_id
from taskflow.campaigns.intake import MAX_FIELD_CHARS, MAX_FILE_BYTES, MAX_ROWS, IntakeRefused, RecipientRow

CAMPAIGN = "0b0f8a5e-6f55-4bd2-9d4f-2f1c0c6b7a11"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (RecipientRow(email="ann@example.com"), None),
        (RecipientRow(email="not-an-address"), "invalid address"),
        # Sending is ASCII only: both would fail at the first mail, not at intake.
        (RecipientRow(email="jos\u00e9@example.com"), "invalid address: Internationalized characters"),
        (
            RecipientRow(email="ann@b\u00fccher.de"),
            "invalid address: the domain is not ASCII; give its ASCII form (ann@xn--bcher-kva.de)",
        ),
        (RecipientRow(email="a@b.c\r\nBcc: x@y.z"), "header-breaking characters in email"),
        (RecipientRow(email="ann@example.com", name="Ann\nBcc: x@y.z"), "header-breaking characters in name"),
        (RecipientRow(name="Ann"), "missing column: email"),
        (RecipientRow(email="  "), "missing email"),
        (RecipientRow(email="ann@example.com", fields={"city": "x" * (MAX_FIELD_CHARS + 1)}), "field too long: city"),
        (RecipientRow(email="ann@example.com", fields={"bad name": "x"}), "field name 'bad name'"),
    ],
)
def test_each_json_row_is_accepted_or_rejected_with_its_reason(row: RecipientRow, reason: str | None) -> None:
    audience = intake.from_json(CAMPAIGN, [row])
    if reason is None:
        assert [r.email for r in audience.recipients] == [row.email] and not audience.rejected
    else:
        assert not audience.recipients
        assert audience.rejected[0].row == 1 and audience.rejected[0].reason.startswith(reason)


def test_the_same_address_twice_is_one_recipient_and_one_duplicate() -> None:
    audience = intake.from_json(
        CAMPAIGN, [RecipientRow(email="Ann@Example.com"), RecipientRow(email=" ann@example.com")]
    )
    assert len(audience.recipients) == 1 and audience.duplicates == 1
    assert audience.recipients[0].recipient_id == recipient_id(CAMPAIGN, "ann@example.com")


def test_a_csv_with_bom_and_semicolons_gives_fields_and_1_based_data_rows() -> None:
    data = "\ufeffemail;name;city\nann@example.com;Ann;Paris\nbad;Bob;Rome\nann@example.com;Ann;Paris\n".encode()
    audience = intake.from_csv(CAMPAIGN, data)
    (ann,) = audience.recipients
    assert (ann.email, ann.name, ann.fields) == ("ann@example.com", "Ann", {"city": "Paris"})
    assert [(r.row, r.email) for r in audience.rejected] == [(2, "bad")]
    assert audience.duplicates == 1


def test_a_csv_row_short_of_cells_is_rejected_for_the_missing_column() -> None:
    audience = intake.from_csv(CAMPAIGN, b"name,city,email\nAnn,Paris\nBob,Rome,bob@example.com\n")
    assert [(r.row, r.reason) for r in audience.rejected] == [(1, "missing column: email")]
    assert [r.email for r in audience.recipients] == ["bob@example.com"]


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        (b"name\nAnn\n", 422, "no email column"),
        (b"email\n" + b"a@example.com\n" * (MAX_ROWS + 1), 422, str(MAX_ROWS)),
        (b"email\n" + b"x" * MAX_FILE_BYTES, 413, str(MAX_FILE_BYTES)),
        (b"email\n\xff\xfe\n", 422, "not UTF-8"),
        (b"", 422, "empty"),
    ],
)
def test_a_csv_that_cannot_be_taken_as_a_whole_is_refused_with_the_limit(data: bytes, status: int, says: str) -> None:
    with pytest.raises(IntakeRefused) as refused:
        intake.from_csv(CAMPAIGN, data)
    assert refused.value.status == status and says in refused.value.message
