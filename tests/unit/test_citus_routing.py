"""The router check of tests/integration/test_statements_on_citus.py, on statements of its own."""

from __future__ import annotations

import pytest

from tests._citus_routing import parameters_of_log, router_problems, tables_of

TABLES = frozenset({"customers", "customer_orders", "customer_order_lines"})


def problems(sql: str, **parameters: str) -> list[str]:
    values = {int(name.removeprefix("p")): value for name, value in parameters.items()}
    return router_problems(sql, TABLES, values)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM customers WHERE tenant_id = $1 AND id = $2",
        "SELECT * FROM customers WHERE id = $2 AND tenant_id = $1::VARCHAR",
        "UPDATE customers SET email = 'x' WHERE customers.tenant_id = 'a' AND id = 1",
        "DELETE FROM customer_orders o WHERE o.tenant_id = $1",
        "SELECT * FROM customers c JOIN customer_orders o"
        " ON o.tenant_id = c.tenant_id AND o.customer_id = c.id WHERE c.tenant_id = $1",
        "SELECT * FROM customers c LEFT JOIN customer_orders o"
        " ON o.tenant_id = c.tenant_id AND o.customer_id = c.id WHERE c.tenant_id = $1",
        "SELECT * FROM customers c WHERE c.tenant_id = $1 AND EXISTS"
        " (SELECT 1 FROM customer_orders o"
        " WHERE o.tenant_id = c.tenant_id AND o.customer_id = c.id)",
        "WITH mine AS (SELECT id FROM customers WHERE tenant_id = $1)"
        " SELECT * FROM mine JOIN customer_orders o"
        " ON o.tenant_id = $1 AND o.customer_id = mine.id",
        "SELECT * FROM customer_orders o, LATERAL (SELECT product_id FROM customer_order_lines l"
        " WHERE l.tenant_id = o.tenant_id AND l.order_pk = o.id) lines WHERE o.tenant_id = $1",
        "SELECT id FROM customers WHERE tenant_id = $1"
        " UNION ALL SELECT customer_id FROM customer_orders WHERE tenant_id = $1",
        "INSERT INTO customers (tenant_id, id) VALUES ($1, 1), ($2, 2)"
        " ON CONFLICT (tenant_id, id) DO UPDATE SET id = excluded.id",
        "INSERT INTO customer_orders (tenant_id, id, customer_id)"
        " SELECT tenant_id, 1, id FROM customers WHERE tenant_id = $1",
        "COPY customers (tenant_id, id, email) FROM STDIN (FORMAT binary)",
        "EXPLAIN SELECT * FROM customers WHERE tenant_id = $1",
        "SELECT set_config('linkbay.tenant_id', $1, true)",
        "SELECT count(*) FROM pg_class",
    ],
)
def test_a_statement_pinned_to_one_tenant_is_routed(sql: str) -> None:
    assert problems(sql, p1="a", p2="a") == []


def test_a_statement_without_the_tenant_filter_is_rejected() -> None:
    assert problems("SELECT * FROM customers WHERE id = $1") == [
        "no equality on tenant_id pins customers"
    ]
    assert problems("DELETE FROM customers WHERE email = $1")
    assert problems("SELECT count(*) FROM customers")


def test_a_join_of_tenant_tables_not_on_tenant_id_is_rejected() -> None:
    assert problems(
        "SELECT * FROM customers c JOIN customer_orders o ON o.customer_id = c.id"
        " WHERE c.tenant_id = $1"
    ) == ["no equality on tenant_id pins customer_orders"]
    assert problems(
        "SELECT * FROM customers c WHERE c.tenant_id = $1 AND EXISTS"
        " (SELECT 1 FROM customer_orders o WHERE o.customer_id = c.id)"
    )


def test_only_conjuncts_pin_a_tenant() -> None:
    assert problems("SELECT * FROM customers WHERE tenant_id = $1 OR id = 1")
    assert problems("SELECT * FROM customers WHERE tenant_id = ANY($1)")
    assert problems("SELECT * FROM customers WHERE tenant_id <> $1")


def test_each_branch_of_a_union_and_each_cte_is_checked() -> None:
    assert problems(
        "SELECT id FROM customers WHERE tenant_id = $1 UNION ALL SELECT id FROM customers"
    )
    assert problems(
        "WITH every AS (SELECT id FROM customers) SELECT * FROM customer_orders"
        " WHERE tenant_id = $1 AND customer_id IN (SELECT id FROM every)"
    )


def test_a_statement_pinned_to_two_tenants_is_rejected() -> None:
    assert problems(
        "INSERT INTO customers (tenant_id, id) VALUES ($1, 1), ($2, 2)", p1="a", p2="b"
    ) == ["tenant_id pinned to several tenants: ['a', 'b']"]
    assert problems(
        "SELECT * FROM customers c, customer_orders o WHERE c.tenant_id = 'a' AND o.tenant_id = 'b'"
    )


def test_inserted_rows_must_carry_their_tenant() -> None:
    assert problems("INSERT INTO customers (id) VALUES (1)")
    assert problems("INSERT INTO customers (tenant_id, id) VALUES (lower($1), 1)")
    assert problems(
        "INSERT INTO customer_orders (tenant_id, id) SELECT tenant_id, id FROM customers"
    )
    assert problems("COPY customers (id, email) FROM STDIN")
    assert problems("COPY customers TO STDOUT")


def test_parameters_and_tables_are_read_as_the_server_has_them() -> None:
    assert parameters_of_log("Parameters: $1 = 'it''s', $2 = NULL, $3 = '1, 2'") == {
        1: "it's",
        2: None,
        3: "1, 2",
    }
    assert tables_of(
        "WITH x AS (SELECT 1 FROM customers) SELECT * FROM x, public.customer_orders"
    ) == frozenset({"customers", "customer_orders"})
