"""A small labelled retrieval set: three businesses' documents and callers' questions with the passage that
answers each (a phrase it must contain), or None where nothing should be found. Used by the retrieval-quality
tests and by bench/knowledge.py, which prints the recall of each way of ranking on it."""

DENTAL_FAQ = """\
Q: Where are you? A: 12 Harbour Street, next to the ferry terminal.
Q: When are you open? A: Monday to Friday 8 am to 6 pm, Saturday 9 am to 1 pm. Closed on Sundays.
Q: Do you take insurance? A: We accept Delta Dental, Cigna and Aetna, and most PPO plans.
Q: How much is a cleaning? A: A routine cleaning costs 95 dollars without insurance.
Q: Is there parking? A: Free parking behind the building, entrance from Mill Lane.
Q: What is your cancellation policy? A: Please cancel at least 24 hours ahead, or a 40 dollar fee applies.
Q: Do you see children? A: Yes, from age three, with a children's corner in the waiting room.
Q: What should I do in a dental emergency? A: Call us right away; we keep slots every morning for emergencies.
"""

DENTAL_GUIDE = """\
# Your first visit

Please arrive ten minutes early to fill in the health questionnaire. Bring your insurance card and a photo ID.
The first examination takes about 45 minutes and includes X-rays when needed.

# Payment

We take cash, all major credit cards and Apple Pay. Payment plans are available for treatments over
500 dollars, interest free for twelve months.

# Whitening

Professional whitening in the chair takes about an hour and costs 350 dollars. Take-home trays cost 200 dollars.

# Our team

Dr. Alvarez places implants on Tuesdays and Thursdays. Dr. Okafor sees children and anxious patients.
"""

PIZZA_MENU = """\
## Pizzas

Margherita with tomato, mozzarella and basil: 11 dollars. Pepperoni: 13 dollars. Four cheese: 14 dollars.
Every pizza can be made with a gluten-free base for 3 dollars more.

## Delivery

We deliver within three miles of the shop from 5 pm to 11 pm. Delivery is free on orders over 25 dollars,
otherwise 4 dollars. Most orders arrive within 40 minutes.

## Allergies

Our kitchen handles nuts, wheat and dairy. Ask the staff for the allergen sheet of every dish.
"""

PLUMBER_SERVICES = """\
Q: Do you do emergency call-outs? A: Yes, 24 hours a day, 7 days a week, including holidays.
Q: How much is a call-out? A: The call-out fee is 80 dollars, plus 60 dollars an hour of labour.
Q: Which areas do you cover? A: The whole of Springfield and Shelbyville, and towns within 20 miles.

Water heaters

We install and repair gas and electric water heaters of every brand. A new 50 gallon heater installed costs from
1,200 dollars. Most repairs are done on the first visit.

Our vans carry spare parts for AquaMax and Rheem heaters, including AquaMax 500 sediment filters.
"""

DOCUMENTS = [
    ("Dental FAQ", DENTAL_FAQ),
    ("Dental guide", DENTAL_GUIDE),
    ("Pizza menu", PIZZA_MENU),
    ("Plumber services", PLUMBER_SERVICES),
]

# (caller's words, a phrase of the passage that answers them, or None: nothing in the documents does)
QUESTIONS = [
    ("where are you located", "12 Harbour Street"),
    ("what's your address", "12 Harbour Street"),
    ("how do I find your office", "12 Harbour Street"),
    ("what time do you open on saturday", "Saturday 9 am"),
    ("are you open on sundays", "Closed on Sundays"),
    ("what are your hours", "Monday to Friday 8 am"),
    ("do you accept my insurance", "Delta Dental"),
    ("is cigna ok", "Delta Dental"),
    ("how much does a teeth cleaning cost", "routine cleaning"),
    ("where can I park my car", "Free parking"),
    ("I need to cancel, is there a fee", "24 hours ahead"),
    ("can I bring my kids", "from age three"),
    ("my tooth is broken and it hurts", "emergencies"),
    ("what should I bring to my first appointment", "insurance card and a photo ID"),
    ("how long is the first exam", "45 minutes"),
    ("can I pay with a credit card", "major credit cards"),
    ("do you offer financing", "Payment plans"),
    ("how much is teeth whitening", "350 dollars"),
    ("how much is a margherita", "Margherita"),
    ("do you have gluten free pizza", "gluten-free base"),
    ("do you deliver", "We deliver within three miles"),
    ("is delivery free", "free on orders over 25"),
    ("how long will my pizza take", "40 minutes"),
    ("I'm allergic to nuts", "handles nuts"),
    ("can you come tonight, my pipe burst", "24 hours a day"),
    ("what do you charge to come out", "call-out fee"),
    ("do you cover shelbyville", "Shelbyville"),
    ("my hot water isn't working", "water heaters"),
    ("how much for a new water heater", "1,200 dollars"),
    ("is dr alvarez in on thursday", "Dr. Alvarez"),
    ("do you have the aquamax 500 filter", "AquaMax 500"),
    ("what time do you clothes", "Monday to Friday 8 am"),
    ("where is you're office", "12 Harbour Street"),
    ("what is the weather tomorrow", None),
    ("who won the football game", None),
    ("can you recommend a good movie", None),
    ("tell me a joke", None),
    ("what is the capital of france", None),
    ("how old are you", None),
    ("I want to speak to a human", None),
    ("thanks, goodbye", None),
    ("do you sell used cars", None),
    ("can you fix my laptop", None),
    ("what's the meaning of life", None),
]
