"""The demo practice's backend answers its tools: open slots, bookings, refusals, cancellations, moves."""

import re
from datetime import date, time

import pytest

from tests.demo_backend.conftest import NOW, ask
from voiceapp.demo_backend.models import DemoBooking, DemoToolReply
from voiceapp.demo_backend.practice import slots_of

REFERENCE = re.compile(r"^DD\d{4}$")


def bookings(call) -> list[tuple]:
    rows = DemoBooking.objects.for_tenant(call.tenant).order_by("day", "start")
    return [(b.name, b.day.isoformat(), f"{b.start:%H:%M}", b.service, b.cancelled_at is None) for b in rows]


def book(client, call, day="2030-01-08", at="15:00", name="Ana Silva", **more):
    return ask(client, "book_appointment", call, date=day, time=at, name=name, **more).json()


def test_a_weekday_offers_every_half_hour_from_eight_to_half_past_four(client, demo):
    answer = ask(client, "check_availability", demo, date="2030-01-08").json()

    assert answer["status"] == "available"
    assert answer["date"] == "2030-01-08"
    assert answer["available_slots"][:3] == ["08:00", "08:30", "09:00"]
    assert answer["available_slots"][-1] == "16:30"
    assert len(answer["available_slots"]) == 18
    assert answer["message"] == (
        "On Tuesday, January 8 I have 18 open times between 8 AM and 4:30 PM, for example 8 AM, 11 AM, 1:30 PM "
        "or 4:30 PM. What time would suit you?"
    )


def test_saturday_is_open_from_nine_to_noon(client, demo):
    answer = ask(client, "check_availability", demo, date="2030-01-12").json()

    assert answer["available_slots"] == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
    assert answer["message"] == (
        "On Saturday, January 12 I have 6 open times between 9 AM and 11:30 AM, for example 9 AM, 10 AM, "
        "10:30 AM or 11:30 AM. What time would suit you?"
    )


def test_sunday_is_closed_and_the_next_open_day_is_named(client, demo):
    answer = ask(client, "check_availability", demo, date="2030-01-13").json()

    assert answer == {
        "status": "closed",
        "message": "We're closed on Sundays. We're open Monday to Friday from 8 AM to 5 PM, and Saturday from "
        "9 AM to noon. The next day with open times is Monday, January 14.",
        "date": "2030-01-13",
        "available_slots": [],
        "next_open_date": "2030-01-14",
    }


def test_today_offers_only_the_times_still_ahead(client, demo):
    answer = ask(client, "check_availability", demo, date=NOW.date().isoformat()).json()

    assert answer["available_slots"][0] == "10:30"
    assert len(answer["available_slots"]) == 13


def test_booked_slots_are_not_offered(client, demo):
    book(client, demo, at="15:00")

    slots = ask(client, "check_availability", demo, date="2030-01-08").json()["available_slots"]

    assert "15:00" not in slots
    assert len(slots) == 17


def test_a_few_open_times_are_all_read_out(client, demo):
    for at in ("09:00", "09:30", "10:00"):
        book(client, demo, day="2030-01-12", at=at, name=f"Patient {at}")

    answer = ask(client, "check_availability", demo, date="2030-01-12").json()

    assert (
        answer["message"]
        == "On Saturday, January 12 I have 10:30 AM, 11 AM and 11:30 AM open. Which time would you like?"
    )


def test_a_fully_booked_day_names_the_next_day_with_open_times(client, demo):
    for at in ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30"):
        book(client, demo, day="2030-01-12", at=at, name=f"Patient {at}")

    answer = ask(client, "check_availability", demo, date="2030-01-12").json()
    taken = book(client, demo, day="2030-01-12", at="10:00")

    assert answer == {
        "status": "fully_booked",
        "message": "Saturday, January 12 is fully booked. The next day with open times is Monday, January 14.",
        "date": "2030-01-12",
        "available_slots": [],
        "next_open_date": "2030-01-14",
    }
    assert taken["message"] == "Sorry, 10 AM on Saturday, January 12 is already taken. Nothing else is open that day."


def test_a_past_day_has_no_slots(client, demo):
    answer = ask(client, "check_availability", demo, date="2030-01-04").json()

    assert answer == {
        "status": "in_past",
        "message": "Friday, January 4 has already passed. Which day would you like instead?",
    }


def test_a_booking_is_confirmed_with_a_reference_and_stored_with_its_call(client, demo):
    answer = book(client, demo, service="cleaning", reason="sensitive tooth")

    assert REFERENCE.match(answer["reference"])
    spoken = " ".join(answer["reference"])
    assert answer == {
        "status": "booked",
        "message": "You're booked for a cleaning on Tuesday, January 8 at 3 PM, under the name Ana Silva. "
        f"Your reference is {spoken}.",
        "reference": answer["reference"],
        "date": "2030-01-08",
        "time": "15:00",
        "name": "Ana Silva",
        "service": "cleaning",
    }
    booking = DemoBooking.objects.for_tenant(demo.tenant).get()
    assert (booking.reference, booking.call_id, booking.reason) == (answer["reference"], demo.pk, "sensitive tooth")


def test_spoken_times_and_a_service_name_are_understood(client, demo):
    answer = book(client, demo, at="3:30 pm", service="Check up")

    assert (answer["status"], answer["time"], answer["service"]) == ("booked", "15:30", "check-up")


def test_a_visit_without_a_service_is_a_check_up(client, demo):
    assert book(client, demo)["service"] == "check-up"


def test_a_taken_slot_is_refused_with_the_nearest_open_times(client, demo):
    book(client, demo, name="Ana Silva")

    answer = book(client, demo, name="Bob Stone")

    assert answer["status"] == "slot_taken"
    assert answer["message"] == (
        "Sorry, 3 PM on Tuesday, January 8 is already taken. The nearest open times are 2:30 PM and 3:30 PM."
    )
    assert bookings(demo) == [("Ana Silva", "2030-01-08", "15:00", "check-up", True)]


@pytest.mark.parametrize(
    ("day", "at", "status", "message"),
    [
        (
            "2030-01-12",
            "14:00",
            "outside_hours",
            "2 PM is outside our hours: on Saturdays we're open from 9 AM to noon. The nearest open times are 11 AM "
            "and 11:30 AM.",
        ),
        (
            "2030-01-08",
            "07:30",
            "outside_hours",
            "7:30 AM is outside our hours: on Tuesdays we're open from 8 AM to 5 PM. The nearest open times are 8 AM "
            "and 8:30 AM.",
        ),
        (
            "2030-01-08",
            "17:00",
            "outside_hours",
            "5 PM is outside our hours: on Tuesdays we're open from 8 AM to 5 PM. The nearest open times are 4 PM "
            "and 4:30 PM.",
        ),
        (
            "2030-01-08",
            "10:15",
            "off_grid",
            "Appointments start on the hour or the half hour. The nearest open times are 10 AM and 10:30 AM.",
        ),
        (
            "2030-01-07",
            "09:00",
            "in_past",
            "9 AM today has already passed. The nearest open times are 10:30 AM and 11 AM.",
        ),
        ("2030-01-04", "09:00", "in_past", "Friday, January 4 has already passed. Which day would you like instead?"),
        ("2031-01-07", "09:00", "too_far", "We book up to six months ahead. Could you choose an earlier day?"),
    ],
)
def test_a_booking_outside_the_calendar_is_refused_in_words(client, demo, day, at, status, message):
    answer = book(client, demo, day=day, at=at)

    assert (answer["status"], answer["message"]) == (status, message)
    assert bookings(demo) == []


def test_a_booking_on_sunday_is_refused(client, demo):
    answer = book(client, demo, day="2030-01-13", at="10:00")

    assert answer["status"] == "closed"
    assert bookings(demo) == []


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"name": "  "}, "need_more", "What name should I put the appointment under?"),
        ({"date": "next tuesday"}, "need_more", "Which day would you like? For example, tomorrow or next Tuesday."),
        (
            {"service": "braces"},
            "need_more",
            "We offer check-ups, cleanings, whitening, fillings and emergency visits. Which one?",
        ),
    ],
)
def test_what_the_caller_has_not_said_yet_is_asked_for(client, demo, fields, status, message):
    answer = ask(client, "book_appointment", demo, **{"date": "2030-01-08", "time": "15:00", "name": "Ana", **fields})

    assert (answer.status_code, answer.json()["status"], answer.json()["message"]) == (200, status, message)
    assert bookings(demo) == []


def test_a_booking_without_a_time_offers_the_days_open_times(client, demo):
    answer = ask(client, "book_appointment", demo, date="2030-01-12", name="Ana Silva").json()

    assert answer["status"] == "need_more"
    assert answer["available_slots"][0] == "09:00"
    assert bookings(demo) == []


def test_a_retried_booking_gets_its_first_answer_and_books_once(client, demo):
    key = {"Idempotency-Key": f"{demo.pk}:call_1"}
    first = ask(client, "book_appointment", demo, headers=key, date="2030-01-08", time="15:00", name="Ana Silva")

    again = ask(client, "book_appointment", demo, headers=key, date="2030-01-08", time="15:00", name="Ana Silva")

    assert again.json() == first.json()
    assert first.json()["status"] == "booked"
    assert bookings(demo) == [("Ana Silva", "2030-01-08", "15:00", "check-up", True)]
    assert DemoToolReply.objects.for_tenant(demo.tenant).count() == 1


def test_cancelling_by_name_and_date_frees_the_slot(client, demo):
    booked = book(client, demo, service="cleaning")

    answer = ask(client, "cancel_appointment", demo, name="ana silva", date="2030-01-08").json()

    assert answer == {
        "status": "cancelled",
        "message": "I've cancelled the cleaning on Tuesday, January 8 at 3 PM for Ana Silva.",
        "late_cancellation": False,
        "reference": booked["reference"],
        "date": "2030-01-08",
        "time": "15:00",
        "name": "Ana Silva",
        "service": "cleaning",
    }
    assert bookings(demo) == [("Ana Silva", "2030-01-08", "15:00", "cleaning", False)]
    assert "15:00" in ask(client, "check_availability", demo, date="2030-01-08").json()["available_slots"]


def test_a_first_name_and_the_reference_find_the_appointment(client, demo):
    booked = book(client, demo)

    answer = ask(client, "cancel_appointment", demo, name="Ana", reference=f"dd-{booked['reference'][2:]}").json()

    assert answer["status"] == "cancelled"


def test_a_name_heard_a_little_differently_and_a_reference_field_holding_no_reference_still_find_it(client, demo):
    book(client, demo)

    answer = ask(client, "cancel_appointment", demo, name="Anna Silva", reference="My name is Anna Silva").json()

    assert (answer["status"], answer["name"]) == ("cancelled", "Ana Silva")


def test_a_reference_read_out_in_pieces_is_understood(client, demo):
    booked = book(client, demo)
    spoken = " ".join(booked["reference"])  # "D D 4 8 2 1"

    answer = ask(
        client, "reschedule_appointment", demo, name="Ana", reference=spoken, new_date="2030-01-08", new_time="16:00"
    )

    assert (answer.json()["status"], answer.json()["time"]) == ("rescheduled", "16:00")


def test_cancelling_within_a_day_mentions_the_late_fee(client, demo):
    book(client, demo, day="2030-01-07", at="16:00")

    answer = ask(client, "cancel_appointment", demo, name="Ana Silva").json()

    assert answer["late_cancellation"] is True
    assert answer["message"] == (
        "I've cancelled the check-up on Monday, January 7 at 4 PM for Ana Silva. As it's less than 24 hours away, "
        "a 25-dollar late fee may apply."
    )


def test_cancelling_an_appointment_nobody_has_is_not_found_and_changes_nothing(client, demo):
    book(client, demo)

    answer = ask(client, "cancel_appointment", demo, name="Bob Stone", date="2030-01-08").json()

    assert answer == {
        "status": "not_found",
        "message": "I couldn't find an upcoming appointment under the name Bob Stone on Tuesday, January 8. Could you "
        "check the name or the date?",
    }
    assert bookings(demo) == [("Ana Silva", "2030-01-08", "15:00", "check-up", True)]


def test_two_appointments_under_one_name_are_read_back_to_choose(client, demo):
    book(client, demo)
    book(client, demo, day="2030-01-09", at="09:00")

    answer = ask(client, "cancel_appointment", demo, name="Ana Silva").json()

    assert answer["status"] == "ambiguous"
    assert answer["message"] == (
        "I found appointments on Tuesday, January 8 at 3 PM and Wednesday, January 9 at 9 AM. Which one should I cancel?"
    )
    assert [row[-1] for row in bookings(demo)] == [True, True]


def test_rescheduling_moves_the_appointment_and_frees_the_old_slot(client, demo):
    booked = book(client, demo, service="whitening")

    answer = ask(
        client, "reschedule_appointment", demo, name="Ana Silva", new_date="2030-01-09", new_time="11:00"
    ).json()

    assert answer == {
        "status": "rescheduled",
        "message": "Done: your whitening session is now on Wednesday, January 9 at 11 AM, under the name Ana Silva.",
        "reference": booked["reference"],
        "date": "2030-01-09",
        "time": "11:00",
        "name": "Ana Silva",
        "service": "whitening",
    }
    assert bookings(demo) == [("Ana Silva", "2030-01-09", "11:00", "whitening", True)]


def test_rescheduling_onto_a_taken_slot_is_refused_and_keeps_the_appointment(client, demo):
    book(client, demo, name="Ana Silva")
    book(client, demo, day="2030-01-09", at="11:00", name="Bob Stone")

    answer = ask(
        client, "reschedule_appointment", demo, name="Ana Silva", new_date="2030-01-09", new_time="11:00"
    ).json()

    assert answer["status"] == "slot_taken"
    assert bookings(demo) == [
        ("Ana Silva", "2030-01-08", "15:00", "check-up", True),
        ("Bob Stone", "2030-01-09", "11:00", "check-up", True),
    ]


def test_sunday_has_no_slots_and_saturdays_last_starts_at_half_past_eleven():
    assert slots_of(date(2030, 1, 13)) == []
    assert slots_of(date(2030, 1, 12))[-1] == time(11, 30)
