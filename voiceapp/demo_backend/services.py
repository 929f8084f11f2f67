"""DEMO ONLY: what the demo practice's backend answers each tool, as JSON the agent can read out.

Every answer is a JSON object with `message` (one or two sentences the agent says as they are: the offline
responder speaks `message`, an LLM gets the whole object) beside the facts (`status`, `date`, `time`,
`available_slots` as "HH:MM", `reference`, ...). What the caller can fix (a closed day, a taken slot, a
missing name) is an answer too, with `status` saying what happened, so the agent tells the caller instead of
"I couldn't do that just now"; only requests that are not the platform's are HTTP errors (views.py).
"""

import secrets
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from difflib import SequenceMatcher

from django.db import IntegrityError, transaction
from django.db.models import Q

from tenants.models import Tenant
from voiceapp.demo_backend import practice as p
from voiceapp.demo_backend.models import DemoBooking, DemoToolReply

LOOKAHEAD_DAYS = 14  # how far "the next open day" is looked for
NAME_SIMILARITY = 0.8  # difflib's ratio from which two spellings are taken for one name


def _reply(status: str, message: str, **facts) -> dict:
    return {"status": status, "message": message, **facts}


def _active(tenant: Tenant):
    return DemoBooking.objects.for_tenant(tenant).filter(cancelled_at__isnull=True)


def _upcoming(tenant: Tenant, now: datetime):
    today = now.date()
    return _active(tenant).filter(Q(day__gt=today) | Q(day=today, start__gt=now.time()))


def free_starts(*, tenant: Tenant, day: date, now: datetime, ignore: DemoBooking | None = None) -> list[time]:
    """The day's appointment starts that are neither booked nor past."""
    if day < now.date():
        return []
    starts = [t for t in p.slots_of(day) if day > now.date() or t > now.time()]
    taken = _active(tenant).filter(day=day)
    if ignore is not None:
        taken = taken.exclude(pk=ignore.pk)
    booked = set(taken.values_list("start", flat=True))
    return [t for t in starts if t not in booked]


def _next_open_day(tenant: Tenant, after: date, now: datetime) -> date | None:
    for offset in range(1, LOOKAHEAD_DAYS + 1):
        day = after + timedelta(days=offset)
        if free_starts(tenant=tenant, day=day, now=now):
            return day
    return None


def _another_day(tenant: Tenant, day: date, now: datetime) -> tuple[str, dict]:
    following = _next_open_day(tenant, max(day, now.date()), now)
    if following is None:
        return "Would another day work?", {}
    return (
        f"The next day with open times is {p.say_date(following)}.",
        {"next_open_date": following.isoformat()},
    )


def _day_problem(tenant: Tenant, day: date | None, now: datetime) -> dict | None:
    """Why nothing can be booked on `day` (None when something may be)."""
    if day is None:
        return _reply("need_more", "Which day would you like? For example, tomorrow or next Tuesday.")
    if day < now.date():
        return _reply("in_past", f"{p.say_date(day)} has already passed. Which day would you like instead?")
    if day > now.date() + timedelta(days=p.HORIZON_DAYS):
        return _reply("too_far", "We book up to six months ahead. Could you choose an earlier day?")
    if not p.is_open(day):
        hint, facts = _another_day(tenant, day, now)
        message = f"We're closed on {day:%A}s. {p.HOURS_SENTENCE} {hint}"
        return _reply("closed", message, date=day.isoformat(), available_slots=[], **facts)
    return None


def availability(*, tenant: Tenant, date_value: object, now: datetime) -> dict:
    """The open appointment times of one day."""
    day = p.parse_date(date_value)
    problem = _day_problem(tenant, day, now)
    if problem is not None:
        return problem
    assert day is not None
    free = free_starts(tenant=tenant, day=day, now=now)
    if not free:
        hint, facts = _another_day(tenant, day, now)
        message = f"{p.say_date(day)} is fully booked. {hint}"
        return _reply("fully_booked", message, date=day.isoformat(), available_slots=[], **facts)
    spoken = [p.say_time(t) for t in p.spread(free)]
    if len(free) <= p.MAX_SUGGESTIONS:
        message = f"On {p.say_date(day)} I have {p.say_list(spoken)} open. Which time would you like?"
    else:
        message = (
            f"On {p.say_date(day)} I have {len(free)} open times between {p.say_time(free[0])} and "
            f"{p.say_time(free[-1])}, for example {p.say_list(spoken, 'or')}. What time would suit you?"
        )
    return _reply("available", message, date=day.isoformat(), available_slots=[p.clock(t) for t in free])


def _slot_problem(
    tenant: Tenant, day: date, start: time, now: datetime, ignore: DemoBooking | None = None
) -> dict | None:
    """Why `start` on `day` cannot be booked (None when it can)."""
    free = free_starts(tenant=tenant, day=day, now=now, ignore=ignore)
    nearby = p.say_list([p.say_time(t) for t in p.nearest(free, start)])
    offer = f" The nearest open times are {nearby}." if len(free) > 1 else f" {nearby} is open." if free else ""
    offer = offer or " Nothing else is open that day."
    facts = {"date": day.isoformat(), "time": p.clock(start), "available_slots": [p.clock(t) for t in free]}
    opening, closing = p.HOURS[day.weekday()]
    if not opening <= start < closing:
        message = f"{p.say_time(start)} is outside our hours: {p.hours_of(day)}.{offer}"
        return _reply("outside_hours", message, **facts)
    if start not in p.slots_of(day):
        return _reply("off_grid", f"Appointments start on the hour or the half hour.{offer}", **facts)
    if day == now.date() and start <= now.time():
        return _reply("in_past", f"{p.say_time(start)} today has already passed.{offer}", **facts)
    if start not in free:
        message = f"Sorry, {p.say_time(start)} on {p.say_date(day)} is already taken.{offer}"
        return _reply("slot_taken", message, **facts)
    return None


def _clean(text: object, chars: int) -> str:
    return " ".join(str(text or "").split())[:chars]


def _clean_name(name: object) -> str:
    return _clean(name, 100)


def _service(value: object) -> str | None:
    text = " ".join(str(value or "").casefold().replace("-", " ").split())
    if not text:
        return p.DEFAULT_SERVICE
    aliases = {"checkup": "check-up", "check up": "check-up", "exam": "check-up", "clean": "cleaning"}
    service = aliases.get(text, text.replace(" ", "-"))
    return service if service in p.SERVICES else None


def _new_reference(tenant: Tenant) -> str:
    while True:
        reference = f"DD{secrets.randbelow(10_000):04d}"
        if not DemoBooking.objects.for_tenant(tenant).filter(reference=reference).exists():
            return reference


def _facts(booking: DemoBooking) -> dict:
    return {
        "reference": booking.reference,
        "date": booking.day.isoformat(),
        "time": p.clock(booking.start),
        "name": booking.name,
        "service": booking.service,
    }


def _when(booking: DemoBooking) -> str:
    return f"{p.say_date(booking.day)} at {p.say_time(booking.start)}"


@transaction.atomic
def booking_create(
    *,
    tenant: Tenant,
    date_value: object,
    time_value: object,
    name: object,
    service: object = None,
    reason: object = None,
    call_id: str | None = None,
    now: datetime,
) -> dict:
    """Book a slot for the caller, or say why not (past, closed, outside hours, taken)."""
    full_name, kind = _clean_name(name), _service(service)
    if not full_name:
        return _reply("need_more", "What name should I put the appointment under?")
    if kind is None:
        return _reply(
            "need_more", "We offer check-ups, cleanings, whitening, fillings and emergency visits. Which one?"
        )
    day = p.parse_date(date_value)
    problem = _day_problem(tenant, day, now)
    if problem is not None:
        return problem
    assert day is not None
    start = p.parse_time(time_value)
    if start is None:
        return {**availability(tenant=tenant, date_value=day, now=now), "status": "need_more"}
    problem = _slot_problem(tenant, day, start, now)
    if problem is not None:
        return problem
    try:
        with transaction.atomic():
            booking = DemoBooking.objects.create(
                tenant=tenant,
                reference=_new_reference(tenant),
                name=full_name,
                day=day,
                start=start,
                service=kind,
                reason=_clean(reason, 200),
                call_id=call_id,
            )
    except IntegrityError:  # another caller took the slot a moment ago
        return _slot_problem(tenant, day, start, now) or _reply("slot_taken", "Sorry, that time was just taken.")
    message = (
        f"You're booked for {p.say_service(booking.service)} on {_when(booking)}, under the name {booking.name}. "
        f"Your reference is {p.say_reference(booking.reference)}."
    )
    return _reply("booked", message, **_facts(booking))


def _same_word(said: str, booked: str) -> bool:
    # Speech recognition spells names its own way ("Anna" for "Ana", "Stoner" for "Stone").
    return said == booked or SequenceMatcher(None, said, booked).ratio() >= NAME_SIMILARITY


def _matches(booking: DemoBooking, name: str) -> bool:
    """Every word the caller gave is (nearly) a word of the booking's name ('Ana' finds 'Ana Silva')."""
    booked = booking.name.casefold().split()
    given = name.casefold().split()
    return bool(given) and all(any(_same_word(word, b) for b in booked) for word in given)


def _find(tenant: Tenant, *, name: str, reference: object, day: date | None, now: datetime) -> list[DemoBooking]:
    bookings = _upcoming(tenant, now).select_for_update()
    if day is not None:
        bookings = bookings.filter(day=day)
    # Only what reads as a reference narrows the search: anything else in the field is ignored, not a miss.
    if code := p.parse_reference(reference):
        bookings = bookings.filter(reference=code)
    return [b for b in bookings if _matches(b, name)]


def _not_found(name: str, day: date | None) -> dict:
    when = f" on {p.say_date(day)}" if day else ""
    return _reply(
        "not_found",
        f"I couldn't find an upcoming appointment under the name {name}{when}. Could you check the name or the date?",
    )


def _which(matches: list[DemoBooking], verb: str) -> dict:
    listed = p.say_list([_when(b) for b in matches[: p.MAX_SUGGESTIONS]])
    return _reply(
        "ambiguous",
        f"I found appointments on {listed}. Which one should I {verb}?",
        appointments=[{"date": b.day.isoformat(), "time": p.clock(b.start), "reference": b.reference} for b in matches],
    )


def _one(tenant: Tenant, *, name: object, reference: object, day: date | None, now: datetime, verb: str):
    """(the caller's one upcoming booking, None) or (None, the answer that says what is missing)."""
    full_name = _clean_name(name)
    if not full_name:
        return None, _reply("need_more", "What name is the appointment under?")
    matches = _find(tenant, name=full_name, reference=reference, day=day, now=now)
    if not matches:
        return None, _not_found(full_name, day)
    if len(matches) > 1:
        return None, _which(matches, verb)
    return matches[0], None


@transaction.atomic
def booking_cancel(
    *, tenant: Tenant, name: object, date_value: object = None, reference: object = None, now: datetime
) -> dict:
    """Cancel the caller's upcoming appointment (found by name, and date or reference when given)."""
    booking, answer = _one(tenant, name=name, reference=reference, day=p.parse_date(date_value), now=now, verb="cancel")
    if booking is None:
        return answer
    booking.cancelled_at = now
    booking.save(update_fields=["cancelled_at", "updated_at"])
    message = f"I've cancelled {p.say_service(booking.service, 'the')} on {_when(booking)} for {booking.name}."
    starts = datetime.combine(booking.day, booking.start, tzinfo=now.tzinfo)
    late = starts - now < timedelta(hours=p.LATE_CANCEL_HOURS)
    if late:
        message += f" As it's less than {p.LATE_CANCEL_HOURS} hours away, a {p.LATE_CANCEL_FEE} late fee may apply."
    return _reply("cancelled", message, late_cancellation=late, **_facts(booking))


@transaction.atomic
def booking_move(
    *,
    tenant: Tenant,
    name: object,
    new_date: object,
    new_time: object,
    reference: object = None,
    now: datetime,
) -> dict:
    """Move the caller's upcoming appointment to another free slot."""
    booking, answer = _one(tenant, name=name, reference=reference, day=None, now=now, verb="move")
    if booking is None:
        return answer
    day = p.parse_date(new_date)
    problem = _day_problem(tenant, day, now)
    if problem is not None:
        return problem
    assert day is not None
    start = p.parse_time(new_time)
    if start is None:
        return {**availability(tenant=tenant, date_value=day, now=now), "status": "need_more"}
    if (day, start) == (booking.day, booking.start):
        return _reply("unchanged", f"Your appointment is already on {p.say_date(day)} at {p.say_time(start)}.")
    problem = _slot_problem(tenant, day, start, now, ignore=booking)
    if problem is not None:
        return problem
    booking.day, booking.start = day, start
    try:
        with transaction.atomic():
            booking.save(update_fields=["day", "start", "updated_at"])
    except IntegrityError:
        return _slot_problem(tenant, day, start, now, ignore=booking) or _reply(
            "slot_taken", "That time was just taken."
        )
    message = (
        f"Done: {p.say_service(booking.service, 'your')} is now on {_when(booking)}, under the name {booking.name}."
    )
    return _reply("rescheduled", message, **_facts(booking))


def answer_once(*, tenant: Tenant, key: str, tool: str, answer: Callable[[], dict]) -> dict:
    """`answer()`, stored under the request's Idempotency-Key: a retried call gets the first answer again."""
    if not key:
        return answer()
    try:
        with transaction.atomic():
            stored = DemoToolReply.objects.for_tenant(tenant).filter(key=key).first()
            if stored is not None:
                return stored.reply
            reply = answer()
            DemoToolReply.objects.create(tenant=tenant, key=key, tool=tool, reply=reply)
            return reply
    except IntegrityError:  # the same call, retried while its first attempt was still running
        stored = DemoToolReply.objects.for_tenant(tenant).filter(key=key).first()
        if stored is None:
            raise
        return stored.reply
