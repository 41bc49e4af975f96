"""Fail when any two of taskq's modules import each other, directly or through others.

import-linter's acyclic_siblings contract checks modules that share a parent; this checks
every pair, a package's __init__ and its own modules included. Imports made only for type
checking are left out (they do not run)."""

import sys

import grimp

graph = grimp.build_graph("taskq", exclude_type_checking_imports=True)
cycles = sorted((importer, imported) for importer in graph.modules
                for imported in graph.find_modules_directly_imported_by(importer)
                if graph.chain_exists(importer=imported, imported=importer))
for importer, imported in cycles:
    chain = graph.find_shortest_chain(importer=imported, imported=importer)
    print(f"import cycle: {importer} -> {' -> '.join(chain or ())}")
print(f"{len(graph.modules)} modules, {len(cycles)} imports in a cycle")
sys.exit(1 if cycles else 0)
