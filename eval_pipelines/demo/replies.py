"""The demo's second, free-text system: ``reply_drafts``, an AI that drafts the reply to a share of the same tickets.

Each draft is a greeting, two sentences (what the agent understood, what happens next) and a sign-off, built from
the ticket's category and product. Three kinds of draft, as a reply copilot produces them:

- **good** (70 %): the right category and next step. The agent sends it as is (accepted) or with a light edit
  (another greeting or sign-off, an added courtesy: edit similarity ≳ 0.9);
- **flawed** (15 %): the right category but a wrong next step (it promises a refund, asks for the wrong
  document). The agent replaces that sentence (a heavy edit, similarity ≈ 0.5–0.8), or sends it anyway;
- **off-topic** (15 %): written for another category. The agent rewrites the reply in their own words
  (overridden, similarity < 0.5), or — automation bias — sends it.

The hidden truth (``true_label``, for the demo reviewers) is the draft itself when it was good, else the reply the
ticket needed (the corrected draft; the agent's own text when they rewrote it). The events are the canonical
schema of the triage events, for the same tickets (same input text, segment, features and timestamp), with
``system = reply_drafts``. A separate RNG stream is used, so the triage events are the same with or without replies.
Nothing here imports dagster.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

REPLY_SYSTEM = "reply_drafts"
REPLY_MODEL_VERSION = "drafts-v1"
PRODUCT_NAMES = {"core": "Core", "pro": "Pro", "nova": "Nova"}

GREETINGS: tuple[str, ...] = ("Hello,", "Hi there,", "Dear customer,")
SIGN_OFFS: tuple[str, ...] = ("Best regards, the support team.", "Kind regards, Support.",
                              "Thank you for your patience, the support team.")
COURTESIES: tuple[str, ...] = (" We are sorry for the trouble.", " Thanks for reaching out.",
                               " Let us know if anything else comes up.")

# Per category: (what we understood, the right next step, a wrong next step), {product} filled in.
TOPICS: dict[str, tuple[str, str, str]] = {
    "billing": ("Thank you for telling us about the charge on your {product} subscription.",
                "We have checked your invoice and will correct it within two business days.",
                "We have issued a full refund of your last three payments."),
    "refund": ("Thank you for your refund request for {product}.",
               "Your refund has been approved and will reach your account within five to seven days.",
               "Please send us a photo of the package so we can track the delivery."),
    "technical": ("We are sorry that {product} is not working as expected.",
                  "Please update to the latest version; our engineers are looking into the error in the meantime.",
                  "We have reset your password and sent you a new login link."),
    "account": ("Thanks for contacting us about your {product} account.",
                "We have reset the access and sent a confirmation link to the account owner's email address.",
                "We have cancelled your subscription as requested."),
    "shipping": ("We are sorry your {product} order has not arrived as expected.",
                 "We have contacted the carrier and will send you the new tracking number today.",
                 "Please reinstall the app and clear its cache."),
    "other": ("Thank you for your message about {product}.",
              "We have passed your request to the right team, who will get back to you this week.",
              "We have escalated this as a production outage."),
}
# An agent's own reply when they throw the draft away: their words, the right content.
REWRITES: dict[str, str] = {
    "billing": "Hi, I looked into the {product} charge you mentioned - you were billed twice by mistake. I have "
               "fixed the invoice myself and you will see the correction on your next statement. Cheers, Alex",
    "refund": "Hi, your {product} refund is sorted: I approved it just now, expect the money within a week. "
              "Ping me here if it does not show up. Cheers, Alex",
    "technical": "Hi, sorry about the {product} trouble. Our team knows about this bug and a fix ships with the "
                 "next update; until then, restarting the sync works around it. Cheers, Alex",
    "account": "Hi, I unlocked your {product} account and re-sent the invite to your admin, so you should be able "
               "to sign in again in a few minutes. Cheers, Alex",
    "shipping": "Hi, I chased the carrier about your {product} order: it is back on its way and I will send the new "
                "tracking link as soon as I have it. Cheers, Alex",
    "other": "Hi, thanks for the note about {product}! I forwarded it to the colleagues who handle this and asked "
             "them to reply to you directly. Cheers, Alex",
}
_GOOD, _FLAWED, _OFF_TOPIC = range(3)
_KIND_MIX = np.array([0.70, 0.15, 0.15])
# What the agent does with each kind of draft: accepted, edited, overridden, ignored.
_ACTIONS = np.array([[0.55, 0.40, 0.00, 0.05],
                     [0.25, 0.60, 0.10, 0.05],
                     [0.10, 0.10, 0.75, 0.05]])
_ACTION_NAMES = ("accepted", "edited", "overridden", "ignored")
_DECISION_MEDIAN_S = {"accepted": 25.0, "edited": 75.0, "overridden": 180.0, "ignored": 20.0}


def _reply(greeting: str, understood: str, step: str, sign_off: str, courtesy: str = "") -> str:
    return f"{greeting} {understood} {step}{courtesy} {sign_off}"


def reply_columns(ticket_rows: np.ndarray, columns: dict[str, pa.Array], categories: np.ndarray,
                  products: np.ndarray, category_names: tuple[str, ...], product_names: tuple[str, ...],
                  rng: np.random.Generator) -> dict[str, pa.Array]:
    """The reply_drafts events for the tickets at ``ticket_rows`` of a day's triage ``columns``.

    ``categories`` / ``products``: the tickets' true category and product codes (all tickets of the day). Returns
    the same columns as ``columns`` (``true_label`` included when it is there), one row per replied ticket.
    """
    m = len(ticket_rows)
    category = categories[ticket_rows]
    product = products[ticket_rows]
    kind = rng.choice(3, size=m, p=_KIND_MIX)
    action = np.array([rng.choice(4, p=_ACTIONS[k]) for k in kind])
    greeting = rng.integers(0, len(GREETINGS), size=m)
    sign_off = rng.integers(0, len(SIGN_OFFS), size=m)
    other = (category + rng.integers(1, len(category_names), size=m)) % len(category_names)
    light = rng.integers(0, 3, size=m)  # which light edit: new greeting, new sign-off, an added courtesy
    courtesy = rng.integers(0, len(COURTESIES), size=m)
    failed = rng.random(m) < 0.01
    drafts, finals, truths, actions = [], [], [], []
    for i in range(m):
        name = PRODUCT_NAMES.get(product_names[product[i]], product_names[product[i]])
        topic = TOPICS[category_names[category[i]]]
        understood, step, wrong_step = (s.format(product=name) for s in topic)
        hello, bye = GREETINGS[greeting[i]], SIGN_OFFS[sign_off[i]]
        right = _reply(hello, understood, step, bye)
        if kind[i] == _GOOD:
            draft = right
        elif kind[i] == _FLAWED:
            draft = _reply(hello, understood, wrong_step, bye)
        else:
            off = TOPICS[category_names[other[i]]]
            draft = _reply(hello, off[0].format(product=name), off[1].format(product=name), bye)
        chosen = "overridden" if failed[i] else _ACTION_NAMES[action[i]]
        rewrite = REWRITES[category_names[category[i]]].format(product=name)
        if chosen == "accepted":
            final = draft
        elif chosen == "overridden":
            final = rewrite
        elif chosen == "edited" and kind[i] == _GOOD:
            if light[i] == 0:
                final = _reply(GREETINGS[(greeting[i] + 1) % len(GREETINGS)], understood, step, bye)
            elif light[i] == 1:
                final = _reply(hello, understood, step, SIGN_OFFS[(sign_off[i] + 1) % len(SIGN_OFFS)])
            else:
                final = _reply(hello, understood, step, bye, COURTESIES[courtesy[i]])
        elif chosen == "edited" and kind[i] == _FLAWED:
            final = right  # the wrong next step replaced
        elif chosen == "edited":
            # An off-topic draft kept only for its greeting and sign-off: the middle is the agent's.
            final = _reply(hello, understood, step, bye)
        else:
            final = None
        drafts.append("none" if failed[i] else draft)
        finals.append(final)
        truths.append(draft if kind[i] == _GOOD else (rewrite if chosen == "overridden" else right))
        actions.append(chosen)
    action_array = np.array(actions, dtype=object)
    seconds = np.array([_DECISION_MEDIAN_S[a] for a in actions]) * rng.lognormal(0.0, 0.5, size=m)
    quality = np.where(kind == _GOOD, 0.82, np.where(kind == _FLAWED, 0.62, 0.45))
    confidence = np.clip(rng.beta(quality * 10, (1 - quality) * 10), 0, 1)
    latency = 2600.0 * rng.lognormal(0.0, 0.3, size=m)
    take = pa.array(ticket_rows)
    out: dict[str, pa.Array] = {}
    for name, column in columns.items():
        out[name] = column.take(take)
    out["event_id"] = pa.array([f"{e}-reply" for e in out["event_id"].to_pylist()], pa.string())
    out["system"] = pa.array([REPLY_SYSTEM] * m, pa.string())
    out["model_version"] = pa.array([REPLY_MODEL_VERSION] * m, pa.string())
    out["ai_output"] = pa.array(drafts, pa.string())
    out["confidence"] = pa.array(np.round(confidence, 4), mask=failed)
    out["latency_ms"] = pa.array(np.round(np.where(failed, 300.0, latency), 1))
    out["cost_usd"] = pa.array(np.round(np.where(failed, 0.0, 0.0009 * rng.lognormal(0.0, 0.1, size=m)), 6))
    out["status"] = pa.array(np.where(failed, "error", "ok"), pa.string())
    out["user_action"] = pa.array(action_array, pa.string())
    out["final_output"] = pa.array(finals, pa.string())
    out["decision_seconds"] = pa.array(np.round(seconds, 2))
    out["ground_truth"] = pa.nulls(m, pa.string())  # no later authoritative outcome for a reply
    for flag in ("compliance_flag", "complaint", "escalation"):
        out[flag] = pa.array(np.zeros(m, dtype=bool))
    if "true_label" in out:
        out["true_label"] = pa.array(truths, pa.string())
    return {name: out[name].cast(columns[name].type) for name in columns}
