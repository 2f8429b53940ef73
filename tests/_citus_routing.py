"""Whether a SQL statement is router-executable on Citus, read with PostgreSQL's own parser.

Citus routes a statement to a single shard when every distributed table it reads
or writes is pinned to one value of the distribution column: an equality between
the table's ``tenant_id`` and a constant or a parameter, or an equality with the
``tenant_id`` of another table that is pinned (a join on the distribution column,
which keeps co-located shards together). An INSERT is routed when each of its rows
carries one ``tenant_id``; a COPY into a table is split by each row's ``tenant_id``.

``router_problems`` parses a statement (pglast wraps PostgreSQL's parser, so what
it reads is what the server reads) and returns what keeps it from being routed:
an empty list means every tenant table in it is pinned to one tenant.

Only conjuncts count: ``a.tenant_id = $1 OR …`` pins nothing. The equalities are
gathered from every WHERE and JOIN … ON of the statement, its CTEs and subqueries
included, and joined into classes; a tenant table is pinned when its class holds a
constant or a parameter. When the parameters' values are known, every pinning
value in one statement must be the same tenant.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pglast import ast, enums, parse_sql

__all__ = (
    "DML_STATEMENTS",
    "TENANT_COLUMN",
    "describe",
    "parameters_of_log",
    "router_problems",
    "statement_kind",
    "tables_of",
)

TENANT_COLUMN = "tenant_id"

DML_STATEMENTS = (
    "SelectStmt",
    "InsertStmt",
    "UpdateStmt",
    "DeleteStmt",
    "MergeStmt",
    "CopyStmt",
    "ExplainStmt",
)
"""The statements that read or write rows (EXPLAIN: the statement it plans); the
others are utility statements (DDL, grants, transaction control, settings)."""

_PARAMETER = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")


def parameters_of_log(detail: str) -> dict[int, str | None]:
    """The values of a ``DETAIL:  Parameters: $1 = '…', $2 = NULL`` line of the server log."""
    values: dict[int, str | None] = {}
    for number, value in _PARAMETER.findall(detail):
        values[int(number)] = None if value == "NULL" else value[1:-1].replace("''", "'")
    return values


def statement_kind(sql: str) -> str:
    """The parse node name of the statement (``SelectStmt``, ``CreateStmt``, …)."""
    return type(_parse_one(sql)).__name__


@functools.lru_cache(maxsize=4096)
def tables_of(sql: str) -> frozenset[str]:
    """The names of the tables a statement names (CTE names excluded)."""
    statement = _parse_one(sql)
    return frozenset(
        node.relname
        for node in _walk(statement)
        if isinstance(node, ast.RangeVar) and node.schemaname in (None, "public")
    ) - _cte_names(statement)


def router_problems(
    sql: str,
    tenant_tables: frozenset[str],
    parameters: Mapping[int, str | None] | None = None,
) -> list[str]:
    """Why ``sql`` would not be routed to one shard on Citus; empty when it would be.

    Args:
        sql: One statement, as the server received it.
        tenant_tables: The tables distributed by ``tenant_id``.
        parameters: The values of its ``$n`` parameters, where known: then every
            value pinning a tenant table must be the same.
    """
    statement = _parse_one(sql)
    if isinstance(statement, ast.ExplainStmt):
        statement = statement.query
    analysis = _Analysis(tenant_tables, parameters or {})
    if isinstance(statement, ast.CopyStmt):
        analysis.copy(statement)
    elif isinstance(statement, ast.SelectStmt | ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt):
        analysis.statement(statement, None)
    elif isinstance(statement, ast.MergeStmt):
        analysis.problems.append("MERGE is not routed by this check")
    return analysis.verdict()


@functools.lru_cache(maxsize=4096)
def _parse_one(sql: str) -> Any:
    """The parse tree of one statement (cached: a run sends the same texts many times;
    the checks only read the tree)."""
    statements = parse_sql(sql)
    if len(statements) != 1:
        raise ValueError(f"one statement expected, found {len(statements)}: {sql[:80]!r}")
    return statements[0].stmt


def _walk(node: Any) -> Iterator[Any]:
    """Every node of a parse tree, depth first."""
    if isinstance(node, ast.Node):
        yield node
        for name in node:
            yield from _walk(getattr(node, name))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)


def _cte_names(statement: Any) -> frozenset[str]:
    return frozenset(
        node.ctename for node in _walk(statement) if isinstance(node, ast.CommonTableExpr)
    )


def _conjuncts(condition: Any) -> Iterator[Any]:
    """The operands of a condition's top-level ANDs."""
    if isinstance(condition, ast.BoolExpr) and condition.boolop == enums.BoolExprType.AND_EXPR:
        for argument in condition.args:
            yield from _conjuncts(argument)
    elif condition is not None:
        yield condition


def _uncast(node: Any) -> Any:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    return node


def _fields(column: ast.ColumnRef) -> list[str]:
    return [part.sval for part in column.fields if isinstance(part, ast.String)]


@dataclass
class _Scope:
    """The names a level of the query sees: each tenant table occurrence by alias."""

    parent: _Scope | None
    relations: dict[str, int | None] = field(default_factory=dict)  # alias -> occurrence
    ctes: frozenset[str] = frozenset()

    def resolve(self, qualifier: str | None) -> int | None:
        scope: _Scope | None = self
        while scope is not None:
            if qualifier is None:
                tenant = [o for o in scope.relations.values() if o is not None]
                if len(tenant) == 1:
                    return tenant[0]
                if scope.relations:
                    return None  # no tenant table here, or ambiguous
            elif qualifier in scope.relations:
                return scope.relations[qualifier]
            scope = scope.parent
        return None

    def cte_visible(self, name: str) -> bool:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.ctes:
                return True
            scope = scope.parent
        return False


class _Analysis:
    """Tenant table occurrences of one statement and the equalities that pin them."""

    def __init__(self, tenant_tables: frozenset[str], parameters: Mapping[int, str | None]):
        self.tenant_tables = tenant_tables
        self.parameters = parameters
        self.occurrences: list[str] = []  # occurrence -> table name
        self.parent: dict[Any, Any] = {}  # union-find over occurrences and anchors
        self.anchor_values: dict[Any, str | None] = {}
        self.problems: list[str] = []

    # union-find ----------------------------------------------------------
    def _find(self, item: Any) -> Any:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def _union(self, a: Any, b: Any) -> None:
        self.parent[self._find(a)] = self._find(b)

    def _anchor(self, value: Any) -> Any | None:
        """An anchor for a constant or a parameter; None for any other expression."""
        value = _uncast(value)
        if isinstance(value, ast.ParamRef):
            key = ("param", value.number)
            self.anchor_values[key] = self.parameters.get(value.number, "<unknown>")
            return key
        if isinstance(value, ast.A_Const) and not value.isnull:
            literal = value.val
            text = getattr(literal, "sval", None) or str(getattr(literal, "ival", literal))
            key = ("const", text)
            self.anchor_values[key] = text
            return key
        return None

    def _tenant_column(self, node: Any, scope: _Scope) -> int | None:
        node = _uncast(node)
        if not isinstance(node, ast.ColumnRef):
            return None
        parts = _fields(node)
        if not parts or parts[-1] != TENANT_COLUMN or len(parts) > 2:
            return None
        return scope.resolve(parts[0] if len(parts) == 2 else None)

    def _equalities(self, condition: Any, scope: _Scope) -> None:
        for conjunct in _conjuncts(condition):
            if not (
                isinstance(conjunct, ast.A_Expr)
                and conjunct.kind == enums.A_Expr_Kind.AEXPR_OP
                and [part.sval for part in conjunct.name] == ["="]
            ):
                continue
            left = self._tenant_column(conjunct.lexpr, scope)
            right = self._tenant_column(conjunct.rexpr, scope)
            if left is not None and right is not None:
                self._union(("table", left), ("table", right))
            elif left is not None or right is not None:
                other = conjunct.rexpr if left is not None else conjunct.lexpr
                anchor = self._anchor(other)
                if anchor is not None:
                    self._union(("table", left if left is not None else right), anchor)

    # the parse tree --------------------------------------------------------
    def _relation(self, node: ast.RangeVar, scope: _Scope) -> None:
        alias = node.alias.aliasname if node.alias is not None else node.relname
        if node.schemaname is None and scope.cte_visible(node.relname):
            scope.relations[alias] = None
        elif node.relname in self.tenant_tables and node.schemaname in (None, "public"):
            self.occurrences.append(node.relname)
            occurrence = len(self.occurrences) - 1
            self._find(("table", occurrence))
            scope.relations[alias] = occurrence
        else:
            scope.relations[alias] = None

    def _from_item(self, node: Any, scope: _Scope) -> None:
        if isinstance(node, ast.RangeVar):
            self._relation(node, scope)
        elif isinstance(node, ast.JoinExpr):
            self._from_item(node.larg, scope)
            self._from_item(node.rarg, scope)
            if node.quals is not None:
                self._expressions(node.quals, scope)
                self._equalities(node.quals, scope)
            if node.usingClause:
                self.problems.append("JOIN … USING is not read by this check")
        elif isinstance(node, ast.RangeSubselect):
            self.statement(node.subquery, scope)  # LATERAL sees the scope; others ignore it
            if node.alias is not None:
                scope.relations[node.alias.aliasname] = None
        elif isinstance(node, ast.RangeFunction):
            self._expressions(node.functions, scope)
            if node.alias is not None:
                scope.relations[node.alias.aliasname] = None
        else:
            self._expressions(node, scope)

    def _expressions(self, node: Any, scope: _Scope) -> None:
        """Subqueries inside expressions, each a scope of its own below ``scope``."""
        if isinstance(node, ast.SubLink):
            self._expressions(node.testexpr, scope)
            self.statement(node.subselect, scope)
        elif isinstance(node, ast.Node):
            for name in node:
                self._expressions(getattr(node, name), scope)
        elif isinstance(node, tuple | list):
            for item in node:
                self._expressions(item, scope)

    def _with(self, clause: ast.WithClause | None, scope: _Scope) -> _Scope:
        if clause is None:
            return scope
        names = frozenset(cte.ctename for cte in clause.ctes)
        inner = _Scope(scope, ctes=names)
        for cte in clause.ctes:
            self.statement(cte.ctequery, inner)
        return inner

    def statement(self, node: Any, outer: _Scope | None) -> None:
        if isinstance(node, ast.SelectStmt):
            self._select(node, outer)
        elif isinstance(node, ast.InsertStmt):
            self._insert(node, outer)
        elif isinstance(node, ast.UpdateStmt | ast.DeleteStmt):
            self._modify(node, outer)
        else:
            self.problems.append(f"{type(node).__name__} inside a statement is not read")

    def _select(self, node: ast.SelectStmt, outer: _Scope | None) -> None:
        scope = self._with(node.withClause, outer or _Scope(None))
        if node.op != enums.SetOperation.SETOP_NONE:
            self._select(node.larg, scope)
            self._select(node.rarg, scope)
            return
        level = _Scope(scope)
        for item in node.fromClause or ():
            self._from_item(item, level)
        for part in (node.targetList, node.whereClause, node.havingClause, node.valuesLists):
            self._expressions(part, level)
        self._equalities(node.whereClause, level)

    def _modify(self, node: ast.UpdateStmt | ast.DeleteStmt, outer: _Scope | None) -> None:
        scope = self._with(node.withClause, outer or _Scope(None))
        level = _Scope(scope)
        self._relation(node.relation, level)
        others = node.fromClause if isinstance(node, ast.UpdateStmt) else node.usingClause
        for item in others or ():
            self._from_item(item, level)
        targets = node.targetList if isinstance(node, ast.UpdateStmt) else None
        for part in (targets, node.whereClause, node.returningClause):
            self._expressions(part, level)
        self._equalities(node.whereClause, level)

    def _insert(self, node: ast.InsertStmt, outer: _Scope | None) -> None:
        scope = self._with(node.withClause, outer or _Scope(None))
        level = _Scope(scope)
        self._relation(node.relation, level)
        target = level.relations[
            node.relation.alias.aliasname if node.relation.alias else node.relation.relname
        ]
        if target is None:
            if node.selectStmt is not None:
                self.statement(node.selectStmt, scope)
            return
        columns = [column.name for column in node.cols or ()]
        if TENANT_COLUMN not in columns:
            self.problems.append(f"INSERT INTO {node.relation.relname} names no {TENANT_COLUMN}")
            return
        position = columns.index(TENANT_COLUMN)
        source = node.selectStmt
        if isinstance(source, ast.SelectStmt) and source.valuesLists:
            for row in source.valuesLists:
                anchor = self._anchor(row[position])
                if anchor is None:
                    self.problems.append(
                        f"a row INSERTed INTO {node.relation.relname} takes its"
                        f" {TENANT_COLUMN} from an expression"
                    )
                else:
                    self._union(("table", target), anchor)
                self._expressions(row, level)
        elif isinstance(source, ast.SelectStmt):
            self._insert_select(node, source, position, target, scope)
        else:
            self.problems.append(
                f"INSERT INTO {node.relation.relname} from {type(source).__name__}"
            )
        if node.onConflictClause is not None:
            self._expressions(node.onConflictClause.whereClause, level)
        self._expressions(node.returningClause, level)

    def _insert_select(
        self,
        node: ast.InsertStmt,
        source: ast.SelectStmt,
        position: int,
        target: int,
        scope: _Scope,
    ) -> None:
        """INSERT … SELECT: the selected ``tenant_id`` must be a pinned one."""
        if source.op != enums.SetOperation.SETOP_NONE:
            self.problems.append(f"INSERT INTO {node.relation.relname} from a set operation")
            self.statement(source, scope)
            return
        inner = self._with(source.withClause, scope)
        level = _Scope(inner)
        for item in source.fromClause or ():
            self._from_item(item, level)
        for part in (source.targetList, source.whereClause, source.havingClause):
            self._expressions(part, level)
        self._equalities(source.whereClause, level)
        value = source.targetList[position].val
        selected = self._tenant_column(value, level)
        if selected is not None:
            self._union(("table", target), ("table", selected))
            return
        anchor = self._anchor(value)
        if anchor is None:
            self.problems.append(
                f"INSERT INTO {node.relation.relname} … SELECT takes its {TENANT_COLUMN}"
                " from an expression"
            )
        else:
            self._union(("table", target), anchor)

    def copy(self, node: ast.CopyStmt) -> None:
        if node.query is not None:
            self.statement(node.query, None)
            return
        table = node.relation.relname
        if table not in self.tenant_tables:
            return
        columns = [column.sval for column in node.attlist or ()]
        if not node.is_from:
            self.problems.append(f"COPY {table} TO reads every shard")
        elif columns and TENANT_COLUMN not in columns:
            self.problems.append(f"COPY {table} FROM names no {TENANT_COLUMN}")

    def verdict(self) -> list[str]:
        problems = list(self.problems)
        classes: dict[Any, list[int]] = {}
        for occurrence in range(len(self.occurrences)):
            classes.setdefault(self._find(("table", occurrence)), []).append(occurrence)
        anchors_by_class: dict[Any, list[Any]] = {}
        for anchor in self.anchor_values:
            anchors_by_class.setdefault(self._find(anchor), []).append(anchor)
        for root, members in classes.items():
            if not anchors_by_class.get(root):
                names = sorted({self.occurrences[m] for m in members})
                problems.append(f"no equality on {TENANT_COLUMN} pins {', '.join(names)}")
        values = {
            value
            for root in classes
            for anchor in anchors_by_class.get(root, ())
            if (value := self.anchor_values[anchor]) != "<unknown>"
        }
        if len(values) > 1:
            problems.append(
                f"{TENANT_COLUMN} pinned to several tenants: {sorted(map(str, values))}"
            )
        return problems


def describe(sql: str, width: int = 160) -> str:
    """The statement on one line, cut to ``width`` characters, for messages."""
    one_line = " ".join(sql.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"
