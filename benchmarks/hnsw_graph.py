"""HNSW graph parameters on the project's own embeddings: recall@10 and build time.

Run by hand (not part of the test suite):

    python benchmarks/hnsw_graph.py --customers 1000000
    python benchmarks/hnsw_graph.py --customers 100000 --graphs 16:64,16:128,16:256

A tenant of ``--customers`` customers is filled and scored as
``benchmarks/intelligence.py`` does (one to three orders each over 200 products,
beside a tenant of 1,000; the heuristics' ``behaviour`` embeddings). Its embeddings
are copied into a plain table, and for each graph (``m:ef_construction``) an HNSW
index is built over them with memory enough for the whole graph
(``hnsw_build_memory``), then searched for ``--queries`` random customers at each
``hnsw.ef_search`` of ``--ef-search``, with ``hnsw.iterative_scan`` relaxed and off.
Recall@10 is counted as the intelligence benchmark counts it: against an exact
ranking in 64-bit floats, tie-aware. ``--cache`` keeps the embeddings in two ``.npy``
files, so a second run skips the fill and the scoring. Prints a table and writes
``benchmarks/results/hnsw_graph.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from _harness import new_database, postgres_admin, report
from intelligence import TENANT, _dsn, _embeddings, _fill, _recall
from pgvector.asyncpg import register_vector

from linkbay_customers import AIService, CustomerService, HeuristicIntelligence, SystemClock
from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from linkbay_customers_sqlalchemy._repositories._postgresql import hnsw_build_memory


async def _scored_embeddings(admin_url: str, customers: int) -> tuple[np.ndarray, np.ndarray]:
    url = await new_database(admin_url)
    storage = SqlAlchemyStorage.from_url(url, pool_size=4)
    clock = SystemClock()
    service = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
    ai = AIService(storage.unit_of_work, clock, HeuristicIntelligence(), chunk_size=5000)
    await _fill(url, service, customers, 1000)
    await ai.score_tenant(TENANT)
    await storage.close()
    return await _embeddings(url)


_HEADER = f"{'m':>3s} {'ef_constr.':>10s} {'build s':>8s} {'iterative_scan':>14s}" + (
    f" {'ef_search':>9s} {'recall@10':>9s} {'p50 ms':>7s}"
)


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['m']:>3d} {row['ef_construction']:>10d} {row['build_seconds']:>8.1f}"
        f" {row['iterative_scan']:>14s} {row['ef_search']:>9d} {row['recall_at_10']:>9.4f}"
        f" {row['p50_ms']:>7.3f}"
    )


async def _measure(
    url: str, ids: np.ndarray, vectors: np.ndarray, args: argparse.Namespace
) -> list[dict[str, Any]]:
    picks = random.Random(5).sample(range(len(ids)), min(args.queries, len(ids)))
    connection = await asyncpg.connect(_dsn(url))
    try:
        await register_vector(connection)
        await connection.execute(
            "CREATE TABLE graph_embeddings (id bigint PRIMARY KEY, embedding vector(32));"
            " SET max_parallel_workers_per_gather = 0"
        )
        await connection.copy_records_to_table(
            "graph_embeddings",
            records=[(int(i), v.astype(np.float32)) for i, v in zip(ids, vectors, strict=True)],
        )
        await connection.execute("VACUUM ANALYZE graph_embeddings")
        search = await connection.prepare(
            "SELECT id FROM graph_embeddings WHERE id <> $2 ORDER BY embedding <=> $1 LIMIT 10"
        )
        rows: list[dict[str, Any]] = []
        for graph in args.graphs.split(","):
            m, ef_construction = (int(part) for part in graph.split(":"))
            memory = hnsw_build_memory(len(ids), vectors.shape[1], m) // 1024
            await connection.execute(
                f"DROP INDEX IF EXISTS graph_index; SET maintenance_work_mem = '{memory}kB'"
            )
            started = time.perf_counter()
            await connection.execute(
                "CREATE INDEX graph_index ON graph_embeddings USING hnsw (embedding"
                f" vector_cosine_ops) WITH (m = {m}, ef_construction = {ef_construction})"
            )
            build = time.perf_counter() - started
            for scan in ("relaxed_order", "off"):
                for ef_search in (int(ef) for ef in args.ef_search.split(",")):
                    await connection.execute(
                        f"SET hnsw.iterative_scan = {scan}; SET hnsw.ef_search = {ef_search}"
                    )
                    found, times = 0.0, []
                    for pick in picks:
                        started = time.perf_counter()
                        vector = vectors[pick].astype(np.float32)
                        answer = await search.fetch(vector, int(ids[pick]))
                        times.append((time.perf_counter() - started) * 1000)
                        found += _recall(ids, vectors, pick, [row[0] for row in answer])
                    row = {
                        "m": m,
                        "ef_construction": ef_construction,
                        "build_seconds": round(build, 1),
                        "iterative_scan": scan,
                        "ef_search": ef_search,
                        "recall_at_10": round(found / len(picks), 4),
                        "p50_ms": round(statistics.median(times), 3),
                    }
                    print(_line(row), flush=True)
                    rows.append(row)
        return rows
    finally:
        await connection.close()


async def run(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.with_suffix(".vec.npy").exists():
        ids = np.load(cache.with_suffix(".ids.npy"))
        vectors = np.load(cache.with_suffix(".vec.npy"))
    else:
        ids, vectors = await _scored_embeddings(admin_url, args.customers)
        if cache is not None:
            np.save(cache.with_suffix(".ids.npy"), ids)
            np.save(cache.with_suffix(".vec.npy"), vectors)
    graphs = await _measure(await new_database(admin_url), ids, vectors, args)
    queries = min(args.queries, len(ids))
    return {"customers": len(ids), "queries": queries, "graphs": graphs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--graphs", default="16:128,16:256,24:128,32:128", help="m:ef_construction")
    parser.add_argument("--ef-search", default="160,400", help="hnsw.ef_search values")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--cache", help="a path stem for the embeddings' .npy files")
    parser.add_argument("--postgres-url", help="an admin URL; embedded PostgreSQL otherwise")
    args = parser.parse_args()
    print(_HEADER)
    with postgres_admin(args.postgres_url) as admin:
        results = asyncio.run(run(args, admin))
    report("hnsw_graph", f"HNSW graphs over {results['customers']:,} embeddings", {}, results)


if __name__ == "__main__":
    main()
