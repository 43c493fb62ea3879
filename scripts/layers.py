#!/usr/bin/env python3
"""Check that usher's top-level modules import each other one way.

Builds the graph of `crate::<module>` references between the top-level
modules under src/ (a file belongs to the module of its first path part:
src/service/carrier.rs is `service`), ignoring comments, and fails when the
graph has a cycle, printing each cycle's modules and the files that make its
edges. `--graph` prints the layers from the bottom up.
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
# Entry points sit above everything and may import anything.
ROOTS = {"lib", "main", "cli", "fuzzing"}
REF = re.compile(r"\bcrate::(\{[^}]*\}|[a-z_][a-z0-9_]*)")


def module_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def graph():
    edges: dict[str, dict[str, set[str]]] = {}
    modules = {module_of(p) for p in SRC.rglob("*.rs")}
    for path in sorted(SRC.rglob("*.rs")):
        me = module_of(path)
        if me in ROOTS:
            continue
        edges.setdefault(me, {})
        for m in REF.finditer(strip_comments(path.read_text())):
            group = m.group(1)
            names = [group] if not group.startswith("{") else [
                part.strip().split("::")[0] for part in group[1:-1].split(",")
            ]
            for name in names:
                if name in modules and name != me and name not in ROOTS:
                    edges[me].setdefault(name, set()).add(str(path.relative_to(SRC)))
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layers(edges):
    """Modules from the bottom up: each imports only modules listed before it."""
    done, order = set(), []
    remaining = set(edges)
    while remaining:
        ready = sorted(m for m in remaining if set(edges[m]) <= done)
        if not ready:
            return order, sorted(remaining)
        order.append(ready)
        done |= set(ready)
        remaining -= set(ready)
    return order, []


def main():
    edges = graph()
    found = cycles(edges)
    if "--graph" in sys.argv:
        order, _ = layers(edges)
        for i, level in enumerate(order):
            print(f"{i}: {' '.join(level)}")
    for comp in found:
        print(f"cycle among: {' '.join(comp)}")
        for a in comp:
            for b in comp:
                if b in edges.get(a, {}):
                    print(f"  {a} -> {b}: {', '.join(sorted(edges[a][b]))}")
    if found:
        sys.exit(1)
    print(f"layers: {len(edges)} modules, imports run one way")


if __name__ == "__main__":
    main()
