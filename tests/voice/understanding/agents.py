"""Three agents of different trades for the understanding test set: a dental practice (the demo's
trade), a pizzeria and a plumber. Each is what a tenant would configure: a profile, FAQ documents
and tools with JSON-Schema parameters. The test set (cases.py) is written against these."""

from datetime import date

TODAY = date(2026, 12, 3)  # a Thursday: 'tomorrow' is Friday the 4th, 'next Tuesday' the 8th

BUILT_INS = [  # the platform's own tools, offered on every call with a transfer target
    {"name": "transfer_call", "description": "Transfer the caller to a person.", "parameters": {}},
    {"name": "end_call", "description": "End the call.", "parameters": {}},
]

DENTAL = {
    "profile": {
        "name": "Appointment Scheduler",
        "business_name": "Demo Dental",
        "greeting_message": "Thank you for calling Demo Dental. How can I help you today?",
        "transfer_targets": [{"name": "Front desk", "destination": "ext:1001", "type": "warm"}],
    },
    "documents": [
        {
            "title": "Practice FAQ",
            "content": (
                "Q: When are you open? A: Monday to Friday, 8 AM to 5 PM, and Saturday mornings 9 to noon. "
                "We are closed on Sundays.\n"
                "Q: Where are you? A: 12 Harbour Street, next to the pharmacy.\n"
                "Q: Is there parking? A: Yes, free parking behind the building, and a bus stop out front.\n"
                "Q: Do you take insurance? A: Yes, most major dental plans; bring your card to the first visit.\n"
                "Q: How much is a check-up? A: A check-up is 65 dollars without insurance.\n"
                "Q: How much is a cleaning? A: A cleaning is 95 dollars without insurance.\n"
                "Q: How much does teeth whitening cost? A: Whitening is 250 dollars per session.\n"
                "Q: What is your cancellation policy? A: Please cancel at least 24 hours ahead; "
                "late cancellations are charged 25 dollars.\n"
                "Q: Are you taking new patients? A: Yes, we welcome new patients of all ages.\n"
                "Q: What do I do in a dental emergency? A: Call us first thing; we keep emergency slots "
                "every morning. After hours, go to the City Hospital emergency room.\n"
                "Q: How can I pay? A: Cash, all major credit cards, and payment plans for larger treatments."
            ),
        }
    ],
    "tools": [
        {
            "name": "check_availability",
            "description": "List the open appointment slots on a given date.",
            "parameters": {
                "type": "object",
                "properties": {"date": {"type": "string", "format": "date", "description": "The day to check"}},
                "required": ["date"],
            },
        },
        {
            "name": "book_appointment",
            "description": "Book a new appointment (check-up, cleaning, filling or other visit) at a date and time.",
            "parameters": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "format": "date", "description": "The day of the visit"},
                    "time": {"type": "string", "description": "The time of the visit"},
                    "name": {"type": "string", "description": "The patient's name"},
                    "service": {"type": "string", "enum": ["check-up", "cleaning", "filling", "whitening"]},
                },
                "required": ["date", "time", "name"],
            },
        },
        {
            "name": "cancel_appointment",
            "description": "Cancel an existing appointment.",
            "parameters": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The patient's name"},
                    "date": {"type": "string", "format": "date", "description": "The day of the appointment"},
                },
                "required": ["name"],
            },
        },
        *BUILT_INS,
    ],
}

PIZZERIA = {
    "profile": {
        "name": "Order line",
        "business_name": "Luigi's Pizzeria",
        "transfer_targets": [{"name": "Manager", "destination": "+15550100200", "type": "blind"}],
    },
    "documents": [
        {
            "title": "Menu and service",
            "content": (
                "Q: What are your opening hours? A: Every day from 11 AM to 11 PM, and until midnight on "
                "Fridays and Saturdays.\n"
                "Q: Do you deliver? A: Yes, within 5 miles of the restaurant; delivery is 3 dollars and "
                "free on orders over 30 dollars.\n"
                "Q: How long does delivery take? A: About 30 to 45 minutes, longer on Friday nights.\n"
                "Q: Do you have gluten-free pizza? A: Yes, any pizza can be made on a gluten-free crust "
                "for 3 dollars more.\n"
                "Q: Do you have vegan options? A: Yes, a vegan cheese and three vegan pizzas.\n"
                "Q: How much is a large pizza? A: Large pizzas start at 16 dollars; a margherita is 16, "
                "a pepperoni 18.\n"
                "Q: What payment do you accept? A: Cash, cards, and Apple Pay at the door.\n"
                "Q: Where are you located? A: 48 Elm Street, across from the cinema.\n"
                "\n"
                "Our dough is made fresh every morning and rests for 48 hours. We bake in a wood-fired "
                "oven at 450 degrees."
            ),
        }
    ],
    "tools": [
        {
            "name": "place_order",
            "description": "Place a pizza order for delivery or pickup.",
            "parameters": {
                "type": "object",
                "properties": {
                    "items": {"type": "string", "description": "What to order"},
                    "fulfilment": {"type": "string", "enum": ["delivery", "pickup"]},
                    "address": {"type": "string", "description": "The delivery address"},
                },
                "required": ["items", "fulfilment"],
            },
        },
        {
            "name": "order_status",
            "description": "Check the status of an existing order by its order number.",
            "parameters": {
                "type": "object",
                "properties": {"order_number": {"type": "integer", "description": "The order number"}},
                "required": ["order_number"],
            },
        },
        *BUILT_INS,
    ],
}

PLUMBER = {
    "profile": {
        "name": "Dispatcher",
        "business_name": "Rapid Rooter Plumbing",
        "transfer_targets": [{"name": "On-call plumber", "destination": "+15550100300", "type": "blind"}],
    },
    "documents": [
        {
            "title": "About us",
            "content": (
                "Q: What areas do you serve? A: The whole metro area and towns within 25 miles.\n"
                "Q: Are you open 24 hours? A: Yes, our emergency line runs 24 hours a day, 7 days a week; "
                "the office is open 7 AM to 6 PM on weekdays.\n"
                "Q: How much is a call-out? A: The call-out fee is 89 dollars, waived if you go ahead with "
                "the repair.\n"
                "Q: Are you licensed and insured? A: Yes, every plumber is licensed, bonded and insured.\n"
                "Q: Do you install water heaters? A: Yes, tank and tankless water heaters, most brands, "
                "usually the same or next day.\n"
                "Q: Do you guarantee your work? A: Every repair has a one-year labour warranty.\n"
                "Q: Do you give free estimates? A: Yes, estimates for larger jobs are free."
            ),
        }
    ],
    "tools": [
        {
            "name": "book_service_visit",
            "description": "Schedule a plumber to visit for a repair or installation at a date and time.",
            "parameters": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "format": "date", "description": "The day of the visit"},
                    "time": {"type": "string", "description": "The time of the visit"},
                    "issue": {"type": "string", "description": "What needs fixing"},
                    "address": {"type": "string", "description": "The address of the job"},
                },
                "required": ["date", "issue"],
            },
        },
        {
            "name": "emergency_dispatch",
            "description": "Send the on-call plumber now for an emergency such as a burst pipe, flooding or a gas smell.",
            "parameters": {
                "type": "object",
                "properties": {
                    "address": {"type": "string", "description": "Where the emergency is"},
                    "issue": {"type": "string", "description": "What is happening"},
                },
                "required": ["address"],
            },
        },
        *BUILT_INS,
    ],
}

AGENTS = {"dental": DENTAL, "pizzeria": PIZZERIA, "plumber": PLUMBER}


def demo() -> dict:
    """The demo agent exactly as `seed_demo` installs it (voiceapp/demo_backend/content.py)."""
    from voiceapp.demo_backend import content

    return {
        "profile": {"name": "Appointment Scheduler", "business_name": "Demo Dental"},
        "documents": [{"title": "Practice FAQ", "content": content.FAQ}],
        "tools": [
            *content.tools(content.DEFAULT_BASE_URL),
            *BUILT_INS,
        ],
    }
