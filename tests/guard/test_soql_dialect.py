"""The SOQL dialect: exact round trips for every construct, typed trees, errors with positions."""

from __future__ import annotations

import random

import pytest
import sqlglot
from sqlglot import exp

from canonry.guard.soql_dialect import parse_soql, to_soql
from canonry.guard.soql_expressions import (
    DATE_LITERALS,
    DATE_N_LITERALS,
    DateLiteral,
    DateTimeLiteral,
    Excludes,
    Fields,
    ForClause,
    Includes,
    SecurityClause,
    SoqlSyntaxError,
    TypeOf,
    UsingScope,
)
from canonry.guard.soql_shape import parse_checked_soql

# construct -> a query using it, written the way the generator writes it (so the round trip is exact)
ROUND_TRIPS: dict[str, str] = {
    "fields": "SELECT Id, Name, BillingCity FROM Account",
    "relationship-path": "SELECT Owner.Profile.Name, Account.Owner.Manager.Profile.Name FROM Contact",
    "deep-path-dot-chain": "SELECT Account.Owner.Manager.Manager.Profile.Name FROM Contact",
    "alias-prefix": "SELECT a.Name FROM Account a WHERE a.Name != 'x'",
    "child-subquery": "SELECT Name, (SELECT LastName FROM Contacts) FROM Account",
    "child-subquery-qualified": "SELECT Account.Name, (SELECT Contact.LastName FROM Account.Contacts) FROM Account",
    "child-subquery-with-clauses": (
        "SELECT Name, (SELECT LastName FROM Contacts WHERE Email LIKE 'a%' ORDER BY LastName LIMIT 5) "
        "FROM Account"
    ),
    "fields-all": "SELECT FIELDS(ALL) FROM Account LIMIT 200",
    "fields-standard": "SELECT FIELDS(STANDARD) FROM Account",
    "fields-custom-mixed": "SELECT Name, Id, FIELDS(CUSTOM) FROM Account LIMIT 200",
    "comparisons": (
        "SELECT Id FROM Opportunity WHERE Amount = 1 AND Amount != 2 AND Amount < 3 AND Amount > 4 "
        "AND Amount <= 5 AND Amount >= 6.5"
    ),
    "and-or-not-paren": "SELECT Id FROM Account WHERE Name = 'Acme' AND (Industry != 'Tech' OR NOT Type = 'x')",
    "in-list": "SELECT Id FROM Account WHERE Id IN ('001A', '001B') AND Type NOT IN ('Partner')",
    "semi-join": "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact WHERE LastName LIKE 'S%')",
    "anti-join": "SELECT Id FROM Account WHERE Id NOT IN (SELECT AccountId FROM Opportunity WHERE IsClosed = false)",
    "like": "SELECT Id FROM Account WHERE Name LIKE 'Acme%'",
    "not-like": "SELECT Id FROM Account WHERE Name NOT LIKE '%test%'",
    "like-escapes": "SELECT Id FROM Account WHERE Name LIKE '50\\%%' AND Name = 'O\\'Reilly'",
    "includes-excludes": "SELECT Id FROM Contact WHERE Interests__c INCLUDES ('Golf;Tennis', 'Sailing') AND Interests__c EXCLUDES ('Chess')",
    "date-literal": "SELECT Id FROM Opportunity WHERE CloseDate = THIS_QUARTER AND CreatedDate < TODAY",
    "date-n-literal": "SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:30 AND CloseDate > N_FISCAL_YEARS_AGO:2",
    "date": "SELECT Id FROM Opportunity WHERE CloseDate >= 2024-01-01",
    "datetime-z": "SELECT Id FROM Account WHERE CreatedDate > 2024-05-01T00:00:00Z",
    "datetime-offset": "SELECT Id FROM Account WHERE SystemModstamp > 2024-05-01T10:00:00-08:00",
    "datetime-millis": "SELECT Id FROM Account WHERE SystemModstamp > 2024-05-01T00:00:00.000+0000",
    "null-boolean": "SELECT Id FROM Account WHERE ParentId = null AND IsDeleted = false AND Name != null",
    "negative-number": "SELECT Id FROM Opportunity WHERE Amount > -5",
    "group-having": "SELECT LeadSource, COUNT(Id) cnt FROM Lead GROUP BY LeadSource HAVING COUNT(Id) > 10",
    "count-empty": "SELECT COUNT() FROM Account",
    "aggregates": "SELECT AVG(Amount), MIN(Amount), MAX(Amount), SUM(Amount), COUNT_DISTINCT(AccountId) FROM Opportunity",
    "rollup": "SELECT LeadSource, COUNT(Name) cnt FROM Lead GROUP BY ROLLUP(LeadSource)",
    "cube": "SELECT Type, BillingCountry, GROUPING(Type) g FROM Account GROUP BY CUBE(Type, BillingCountry)",
    "date-functions": "SELECT CALENDAR_YEAR(CreatedDate), SUM(Amount) FROM Opportunity GROUP BY CALENDAR_YEAR(CreatedDate)",
    "mixed-case-functions": "SELECT toLabel(Status), convertCurrency(AnnualRevenue) FROM Lead",
    "order-nulls": "SELECT Name FROM Account ORDER BY Name DESC NULLS LAST, Id ASC NULLS FIRST, Industry",
    "limit-offset": "SELECT Name FROM Account ORDER BY Name LIMIT 10 OFFSET 5",
    "security-enforced": "SELECT Id FROM Account WHERE Name = 'x' WITH SECURITY_ENFORCED ORDER BY Name LIMIT 5",
    "user-mode": "SELECT Id FROM Account WITH USER_MODE",
    "using-scope": "SELECT Id FROM Account USING SCOPE Mine WHERE Name = 'x'",
    "for-view": "SELECT Id FROM Account LIMIT 1 FOR VIEW",
    "for-reference": "SELECT Id FROM Account LIMIT 1 FOR REFERENCE",
    "for-update": "SELECT Id FROM Account LIMIT 1 FOR UPDATE",
    "update-tracking": "SELECT Id FROM Account LIMIT 1 UPDATE TRACKING",
    "typeof": (
        "SELECT TYPEOF What WHEN Account THEN Phone, NumberOfEmployees WHEN Opportunity THEN Amount, "
        "CloseDate ELSE Name, Email END FROM Event"
    ),
    "typeof-no-else": "SELECT Id, TYPEOF Who WHEN Contact THEN Email END FROM Task",
    "every-clause": (
        "SELECT Name, COUNT(Id) n FROM Account USING SCOPE Everything WHERE CreatedDate = LAST_N_DAYS:7 "
        "WITH SECURITY_ENFORCED GROUP BY Name HAVING COUNT(Id) > 1 ORDER BY Name LIMIT 10 OFFSET 2 FOR VIEW"
    ),
}


@pytest.mark.parametrize("query", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_round_trip_exact(query: str) -> None:
    tree = parse_checked_soql(query)
    assert to_soql(tree) == query
    assert parse_soql(to_soql(tree)) == tree


def test_registered_with_sqlglot() -> None:
    query = ROUND_TRIPS["every-clause"]
    assert sqlglot.transpile(query, read="soql", write="soql") == [query]


@pytest.mark.parametrize(
    "query, node_type",
    [
        ("SELECT Id FROM Account WHERE CreatedDate = TODAY", DateLiteral),
        ("SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:30", DateLiteral),
        ("SELECT Id FROM Account WHERE CreatedDate > 2024-05-01T00:00:00Z", DateTimeLiteral),
        ("SELECT FIELDS(ALL) FROM Account", Fields),
        ("SELECT TYPEOF What WHEN Account THEN Name END FROM Event", TypeOf),
        ("SELECT Id FROM Contact WHERE Interests__c INCLUDES ('a')", Includes),
        ("SELECT Id FROM Contact WHERE Interests__c EXCLUDES ('a')", Excludes),
        ("SELECT Id FROM Account WITH SECURITY_ENFORCED", SecurityClause),
        ("SELECT Id FROM Account USING SCOPE Team", UsingScope),
        ("SELECT Id FROM Account FOR VIEW", ForClause),
    ],
)
def test_soql_constructs_are_typed_nodes(query: str, node_type: type) -> None:
    assert parse_soql(query).find(node_type) is not None


def test_every_date_literal_parses() -> None:
    for name in sorted(DATE_LITERALS):
        literal = parse_soql(f"SELECT Id FROM Account WHERE CreatedDate = {name}").find(DateLiteral)
        assert literal is not None and literal.name == name and literal.expression is None
    for name in sorted(DATE_N_LITERALS):
        query = f"SELECT Id FROM Account WHERE CreatedDate = {name}:12"
        literal = parse_soql(query).find(DateLiteral)
        assert literal is not None and literal.name == name and literal.expression.name == "12"
        assert to_soql(parse_soql(query)) == query


def test_date_literals_are_case_insensitive_and_normalised() -> None:
    tree = parse_soql("select Id from Account where CreatedDate = last_n_days:3")
    assert to_soql(tree) == "SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:3"


def test_relationship_path_parts() -> None:
    tree = parse_soql("SELECT Account.Owner.Manager.Manager.Profile.Name FROM Contact")
    projection = tree.expressions[0]
    assert isinstance(projection, exp.Dot)
    assert projection.sql(dialect="soql") == "Account.Owner.Manager.Manager.Profile.Name"


@pytest.mark.parametrize(
    "query, token, message_part",
    [
        ("SELECT Id FROM Account LIMIT 5 WHERE Name = 'x'", "WHERE", "out of place"),
        ("SELECT Id FROM Account WHERE CreatedDate > LAST_N_DAYS", "LAST_N_DAYS", "needs a number"),
        ("SELECT FIELDS(FOO) FROM Account", "FOO", "ALL, STANDARD or CUSTOM"),
        ("SELECT * FROM Account", "*", "SELECT *"),
        ("SELECT DISTINCT Name FROM Account", "Name", "DISTINCT"),
        ("SELECT Id FROM Account WHERE Name IS NULL", "Name", "IS NULL"),
        ("SELECT Id, Amount + 1 FROM Opportunity", "Amount", "arithmetic"),
        ("SELECT foo(Id) FROM Account", "foo", "Unknown SOQL function"),
        ("SELECT Id FROM Account WITH FOO", "FOO", "SECURITY_ENFORCED"),
        ("SELECT Id FROM Account USING SCOPE Nowhere", "Nowhere", "Unknown scope"),
        ("SELECT Id FROM Account a JOIN Contact c ON a.Id = c.AccountId", "JOIN", "Unexpected"),
        ("SELECT Id FROM Account WHERE Name = \"Acme\"", "\"Acme\"", "quoted"),
        ("SELECT Id FROM Account\nWHERE Name = 'x'\nLIMIT ten", "ten", "whole number"),
    ],
)
def test_parse_errors_point_at_the_offending_token(query: str, token: str, message_part: str) -> None:
    with pytest.raises(SoqlSyntaxError) as caught:
        parse_checked_soql(query)
    error = caught.value
    assert message_part in str(error)
    assert error.position == query.index(token), (error.position, query.index(token))
    assert error.line == query[: error.position].count("\n") + 1



def test_non_select_statements_parse_for_the_rules() -> None:
    assert isinstance(parse_checked_soql("DELETE FROM Account"), exp.Delete)


FRAGMENTS = [
    "SELECT", "Id", "Name", ",", "FROM", "Account", "WHERE", "=", "'x'", "(", ")", "LIMIT", "10", "IN",
    "NOT", "AND", "OR", "LIKE", "'%a'", "TODAY", "LAST_N_DAYS", ":", "30", "2024-05-01T00:00:00Z",
    "FIELDS", "ALL", "TYPEOF", "WHEN", "THEN", "ELSE", "END", "WITH", "SECURITY_ENFORCED", "USING",
    "SCOPE", "FOR", "UPDATE", "VIEW", "ORDER BY", "NULLS", "FIRST", "GROUP BY", "HAVING", "COUNT",
    "OFFSET", "INCLUDES", "*", ";", "\"", "'", "\\", ".", "Owner", "-", "+", "$", "{", "}", "@", "\n",
]


def test_fuzz_never_crashes() -> None:
    """Token soup and byte noise: always a tree or a SoqlSyntaxError, never anything else."""
    rng = random.Random(20261122)
    samples = [" ".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 18))) for _ in range(400)]
    samples += ["".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(1, 40))) for _ in range(100)]
    samples += ["SELECT Id FROM Account WHERE " + "(" * 300, "SELECT " + ", ".join(["Id"] * 2000) + " FROM Account"]
    outcomes = {"parsed": 0, "error": 0}
    for sample in samples:
        try:
            parse_checked_soql(sample)
            outcomes["parsed"] += 1
        except SoqlSyntaxError as error:
            assert error.position is None or 0 <= error.position <= len(sample)
            outcomes["error"] += 1
    assert outcomes["error"] > 0 and sum(outcomes.values()) == len(samples)


@pytest.mark.parametrize(
    "query, position",
    [
        ("SELECT Id FROM Account WHERE Name = 'abc", 36),
        ("SELECT Id FROM Account WHERE Name = 'it\\'s", 36),
        ("SELECT Id FROM Account; SELECT Id FROM Contact", 22),
        ("", 0),
    ],
)
def test_errors_without_a_token_still_have_a_position(query: str, position: int) -> None:
    with pytest.raises(SoqlSyntaxError) as caught:
        parse_checked_soql(query)
    assert caught.value.position == position
