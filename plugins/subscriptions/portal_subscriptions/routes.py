"""The customer's subscription pages: list, detail, pause and resume, cancel and undo, change.

Every action is a form that leads to a review page (a ``GET`` that shows what will happen and
changes nothing), then a ``POST`` that makes the change and redirects (303) to the
subscription's page with ``?done=<what>``. Every subscription id in a path is looked up among the
signed-in customer's own at this merchant, so any other id answers 404 like a missing one.
"""

from __future__ import annotations

from portal_subscriptions.cancel_routes import cancel, cancel_form, cancel_review, undo_cancel
from portal_subscriptions.change_routes import change, change_form, change_review
from portal_subscriptions.pages import detail, list_subscriptions
from portal_subscriptions.pause_routes import pause, pause_form, pause_review, resume

SUBSCRIPTION_ROUTES = [
    list_subscriptions,
    detail,
    pause_form,
    pause_review,
    pause,
    resume,
    cancel_form,
    cancel_review,
    cancel,
    undo_cancel,
    change_form,
    change_review,
    change,
]
