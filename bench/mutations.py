"""Plant known bugs in the guarantees, one at a time, and check the tests catch each one.

Usage::

    uv run python bench/mutations.py            # every mutation
    uv run python bench/mutations.py csrf-any-header single-use-switch
    uv run python bench/mutations.py --list

Each mutation replaces one exact piece of source (found exactly once, or the script stops) and
runs the tests named for it (in file order, stopping at the first failure). A mutation is
*killed* when those tests fail, *survived* when they pass. Before any mutation the same tests
run on the untouched tree and must pass, so a kill means the plant, not a broken suite. The file
is restored after each run, also on Ctrl+C. Exit status: 0 when every mutation was killed.

The list is documented in docs/testing.md; keep both in step.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness import say

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    """One planted bug: where, what it replaces, and the tests that must catch it."""

    name: str
    guarantee: str
    path: str
    edits: tuple[tuple[str, str], ...]
    """``(original, mutated)`` pairs; each original must occur exactly once in the file."""
    tests: tuple[str, ...]


RLS_OR_TRUE = '.replace("USING (iso_id = portal_current_iso())", "USING (iso_id = portal_current_iso() OR true)")'
CARDS = "tests/plugins/cards/test_cards_security.py"
TENANT_TABLES = "tests/core/test_tenant_tables.py"
AUDIT = ("tests/core/test_audit.py", "tests/security/test_audit_api.py")
LINKS = "tests/security/test_links.py"
TOKENS = "tests/security/test_tokens.py"
GATEWAYS = ("tests/core/test_nmi_gateway.py", "tests/core/test_sandbox_gateway.py")
SUBSCRIPTIONS_SECURITY = "tests/plugins/subscriptions/test_subscriptions_security.py"
SUBSCRIPTIONS_PERMISSIONS = "tests/plugins/subscriptions/test_subscriptions_permissions.py"
SWITCH_SECURITY = "tests/plugins/merchant_switch/test_switch_security.py"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        name="cross-tenant-query-id",
        guarantee="isolation: a card id in the query shows nothing of another customer's card",
        path="core/portal/payments/methods.py",
        edits=(
            (
                '"WHERE merchant_id = $1 AND customer_id = $2 AND id = $3 AND removed_at IS NOT NULL"',
                '"WHERE merchant_id = $1 AND $2::text IS NOT NULL AND id = $3 AND removed_at IS NOT NULL"',
            ),
        ),
        tests=(CARDS,),
    ),
    Mutation(
        name="rls-cards-or-true",
        guarantee="isolation: row-level security on portal_payment_method keeps each ISO to its rows",
        path="core/portal/migrations/portal_2026_12_04t10_00_00_000000.py",
        edits=(
            (
                'TAKE_OVER + tenant_table_sql(NEW, privileges="SELECT, INSERT, UPDATE")',
                'TAKE_OVER + tenant_table_sql(NEW, privileges="SELECT, INSERT, UPDATE")' + RLS_OR_TRUE,
            ),
        ),
        tests=(TENANT_TABLES,),
    ),
    Mutation(
        name="rls-audit-or-true",
        guarantee="isolation: row-level security on portal_audit_event keeps each ISO to its rows",
        path="core/portal/migrations/portal_2026_11_25t10_05_00_000000.py",
        edits=(
            (
                'tenant_table_sql("portal_audit_event", privileges="SELECT, INSERT"),',
                'tenant_table_sql("portal_audit_event", privileges="SELECT, INSERT")' + RLS_OR_TRUE + ",",
            ),
        ),
        tests=(TENANT_TABLES,),
    ),
    Mutation(
        name="chain-without-actor",
        guarantee="audit chain: the actor is part of each record's hash",
        path="core/portal/events/chain.py",
        edits=(('    "actor_type",\n    "actor_id",\n', '    "actor_type",\n'),),
        tests=AUDIT,
    ),
    Mutation(
        name="chain-four-fields",
        guarantee="audit chain: every documented field is part of each record's hash",
        path="core/portal/events/chain.py",
        edits=(("CHAINED_FIELDS = (\n", 'CHAINED_FIELDS = ("id", "merchant_id", "seq", "data")\n_UNCHAINED = (\n'),),
        tests=AUDIT,
    ),
    Mutation(
        name="csrf-any-header",
        guarantee="CSRF: a header token must be the one derived from the visitor's cookie",
        path="core/portal/access/csrf.py",
        edits=(
            (
                "    submitted = connection.headers.get(HEADER)\n",
                "    submitted = connection.headers.get(HEADER)\n    if submitted is not None:\n        return\n",
            ),
        ),
        tests=("tests/security/test_csrf_and_login.py",),
    ),
    Mutation(
        name="single-use-switch",
        guarantee="single use: a switch link works once",
        path="plugins/merchant_switch/portal_merchant_switch/landing.py",
        edits=(("    single_use=True,\n", "    single_use=False,\n"),),
        tests=(SWITCH_SECURITY,),
    ),
    Mutation(
        name="switch-source-unchecked",
        guarantee="isolation: a switch link lands only while its source is still a sibling",
        path="plugins/merchant_switch/portal_merchant_switch/records.py",
        edits=(("           AND src.email_normalized = dst.email_normalized\n", ""),),
        tests=(SWITCH_SECURITY,),
    ),
    Mutation(
        name="single-use-race",
        guarantee="single use: one link opened from many connections at once signs in once",
        path="core/portal/access/links.py",
        edits=(
            (
                "    claims = await authenticate(tenant, token, now)\n    rows = await fetch(",
                "    claims = await authenticate(tenant, token, now)\n"
                '    seen = await fetch("SELECT use_count FROM portal_link WHERE merchant_id = $1 AND jti = $2", '
                "tenant.merchant.id, claims.jti)\n    rows = await fetch(",
            ),
            (
                'if claims.purpose in SINGLE_USE and row["use_count"] > 1:',
                'if claims.purpose in SINGLE_USE and seen and seen[0]["use_count"] > 0:',
            ),
        ),
        tests=(f"{LINKS}::test_a_single_use_link_opened_from_many_connections_at_once_signs_in_once",),
    ),
    Mutation(
        name="token-any-signature",
        guarantee="tokens: a link's signature is checked",
        path="core/portal/access/tokens.py",
        edits=(("    if not hmac.compare_digest(expected", "    if False and not hmac.compare_digest(expected"),),
        tests=(TOKENS, LINKS),
    ),
    Mutation(
        name="token-no-expiry",
        guarantee="tokens: an expired link is refused",
        path="core/portal/access/links.py",
        edits=(("    if claims.exp <= now.timestamp():", "    if claims.exp <= now.timestamp() - 10**9:"),),
        tests=(LINKS, TOKENS),
    ),
    Mutation(
        name="token-key-of-any-merchant",
        guarantee="tokens: a link verifies only with a key of the merchant whose host it is opened on",
        path="core/portal/access/keys.py",
        edits=(
            (
                '"SELECT secret FROM portal_signing_key WHERE merchant_id = $1 AND id = $2 "',
                '"SELECT secret FROM portal_signing_key WHERE $1::text IS NOT NULL AND id = $2 "',
            ),
        ),
        tests=(TOKENS,),
    ),
    Mutation(
        name="decline-stop-recurring-retried",
        guarantee="decline classification: NMI 261 and 262 (stop recurring) are never retried",
        path="core/portal/payments/gateway.py",
        edits=(
            (
                "        return not self.approved and self.response_code in RETRYABLE_CODES",
                "        return not self.approved and (self.response_code in RETRYABLE_CODES or self.stop_recurring)",
            ),
        ),
        tests=GATEWAYS,
    ),
    Mutation(
        name="decline-soft-is-final",
        guarantee="decline classification: a soft decline (NMI 202, insufficient funds) may be retried",
        path="core/portal/payments/gateway.py",
        edits=(("frozenset({200, 201, 202, 203, 264,", "frozenset({200, 201, 203, 264,"),),
        tests=GATEWAYS,
    ),
    Mutation(
        name="broker-url-ignored",
        guarantee="brokers: PORTAL_BROKER_URL picks the broker",
        path="core/portal/tasks/broker.py",
        edits=(("    url = settings.broker_url\n", "    url = None\n"),),
        tests=("tests/core/test_brokers.py",),
    ),
    Mutation(
        name="subscriptions-any-customer",
        guarantee="isolation: a subscription id reaches only the signed-in customer's subscription",
        path="plugins/subscriptions/portal_subscriptions/store.py",
        edits=(
            (
                " WHERE s.merchant_id = $1 AND s.customer_id = $2\n",
                " WHERE s.merchant_id = $1 AND $2::text IS NOT NULL\n",
            ),
        ),
        tests=(SUBSCRIPTIONS_SECURITY,),
    ),
    Mutation(
        name="subscriptions-pause-unchecked",
        guarantee="permissions: a pause where allow_pause is off is refused (403) and writes nothing",
        path="plugins/subscriptions/portal_subscriptions/service.py",
        edits=(('        "pause": settings.allow_pause,\n', '        "pause": True,\n'),),
        tests=(SUBSCRIPTIONS_PERMISSIONS,),
    ),
)


def pytest_command(tests: tuple[str, ...]) -> list[str]:
    """The test run for a mutation: in file order, quiet, stopping at the first failure."""
    return [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *tests]


def run_tests(tests: tuple[str, ...]) -> tuple[int, float]:
    """Run ``tests``; return pytest's exit code and the seconds it took."""
    started = time.monotonic()
    result = subprocess.run(pytest_command(tests), cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    return result.returncode, time.monotonic() - started


def plant(mutation: Mutation) -> str:
    """Write the mutated source; return the original text of the file for restoring."""
    path = ROOT / mutation.path
    text = path.read_text(encoding="utf-8")
    mutated = text
    for original, replacement in mutation.edits:
        found = mutated.count(original)
        if found != 1:
            raise SystemExit(f"{mutation.name}: expected {original!r} once in {mutation.path}, found it {found} times")
        mutated = mutated.replace(original, replacement)
    path.write_text(mutated, encoding="utf-8")
    return text


def verdict(code: int) -> str:
    """The verdict for pytest's exit code: 1 (tests failed) kills; 0 survives; anything else is an error."""
    return {0: "SURVIVED", 1: "killed"}.get(code, f"error (pytest exit {code})")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen mutations and print a table; 0 when all were killed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    options = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not options.names or m.name in options.names]
    unknown = set(options.names) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutations: {', '.join(sorted(unknown))}")
    if options.list:
        for mutation in chosen:
            say(f"{mutation.name:34} {mutation.path}: {mutation.guarantee}")
        return 0
    suites = sorted({test for mutation in chosen for test in mutation.tests})
    code, seconds = run_tests(tuple(suites))
    if code != 0:
        say(f"the tests fail without any mutation (pytest exit {code}); fix them first: {' '.join(suites)}")
        return 2
    say(f"baseline: {len(suites)} test files pass ({seconds:.0f} s)")
    results: list[tuple[Mutation, str, float]] = []
    for mutation in chosen:
        original = plant(mutation)
        try:
            code, seconds = run_tests(mutation.tests)
        finally:
            (ROOT / mutation.path).write_text(original, encoding="utf-8")
        results.append((mutation, verdict(code), seconds))
        say(f"{verdict(code):10} {mutation.name:34} {seconds:6.1f} s  {mutation.guarantee}")
    killed = sum(1 for _, outcome, _ in results if outcome == "killed")
    say(f"\n{killed} of {len(results)} mutations killed")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
