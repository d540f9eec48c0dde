#!/usr/bin/env python3
"""Holds the source tree to its layering (README, "Layout").

src/ and include/llamad/ have one folder per layer, ordered below from the
bottom up; a file may use its own layer and the layers below it, never one
above. Checked two ways:

- includes: every #include "..." of a source or header names a file of the same
  or a lower layer; a folder's private headers (those in src/LAYER/) are
  included only from that folder; headers include each other without circles.
- clients: the C clients of clients/ talk to the daemon over HTTP alone, so
  their #include "..." name files of their own folder, never the daemon's.
- calls: from the compiled objects (nm), a file's undefined symbols are defined
  in the same or a lower layer, and no two files need each other (no circles
  of files through their calls).

usage: check_layers.py SOURCE_ROOT BUILD_ROOT
"""
import glob
import os
import re
import subprocess
import sys

LAYERS = ["base", "format", "kernels", "tokenizer", "grammar", "model", "engine", "server", "tools"]
RANK = {name: i for i, name in enumerate(LAYERS)}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of_path(rel):
    """The layer of a repository path (src/L/... or include/llamad/L/...), or None."""
    parts = rel.split("/")
    if parts[0] == "src" and len(parts) > 2:
        return parts[1]
    if parts[:2] == ["include", "llamad"] and len(parts) > 3:
        return parts[2]
    return None


def resolve(root, including, name):
    """The repository path an #include "name" in `including` reaches, or None."""
    here = os.path.dirname(including)
    local = os.path.normpath(os.path.join(here, name))
    if os.path.exists(os.path.join(root, local)):
        return local
    public = os.path.join("include", name)
    if os.path.exists(os.path.join(root, public)):
        return public
    return None


def check_includes(root, problems):
    files = sorted(glob.glob("src/**/*.[ch]", root_dir=root, recursive=True) +
                   glob.glob("include/llamad/**/*.h", root_dir=root, recursive=True))
    header_edges = {}
    for rel in files:
        layer = layer_of_path(rel)
        if layer not in RANK:
            problems.append(f"{rel}: not in a layer's folder ({', '.join(LAYERS)})")
            continue
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            text = f.read()
        for name in INCLUDE.findall(text):
            target = resolve(root, rel, name)
            if target is None:
                problems.append(f'{rel}: #include "{name}" names no file of the tree')
                continue
            target_layer = layer_of_path(target)
            if RANK.get(target_layer, -1) > RANK[layer]:
                problems.append(f"{rel} ({layer}) includes {target} ({target_layer}), a "
                                "higher layer")
            if target.startswith("src/") and os.path.dirname(target) != os.path.dirname(rel):
                problems.append(f"{rel} includes {target}, a private header of another "
                                "folder")
            if rel.endswith(".h"):
                header_edges.setdefault(rel, set()).add(target)
    for cycle in circles(header_edges):
        problems.append("headers include each other: " + " -> ".join(cycle))
    return len(files)


def circles(edges):
    """The strongly connected components of more than one node, each as a list."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def check_clients(root, problems):
    files = sorted(glob.glob("clients/**/*.[ch]", root_dir=root, recursive=True))
    for rel in files:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            text = f.read()
        for name in INCLUDE.findall(text):
            target = os.path.normpath(os.path.join(os.path.dirname(rel), name))
            if os.path.dirname(target) != os.path.dirname(rel) or not os.path.exists(
                    os.path.join(root, target)):
                problems.append(f'{rel}: #include "{name}" is not a file of its own folder '
                                "(a client uses none of the daemon's code)")
    return len(files)


def object_source(obj):
    """src/kernels/quant.c for .../src_kernels_quant.c.o, as meson names objects."""
    base = os.path.basename(obj)[: -len(".o")]
    match = re.fullmatch(r"src_([a-z]+)_(.+\.c)", base)
    return f"src/{match.group(1)}/{match.group(2)}" if match else None


def check_calls(root, build, problems):
    # Objects of sources no longer in the tree may linger in the build directory.
    objects = [obj for obj in sorted(glob.glob(os.path.join(build, "*.p", "src_*.c.o")))
               if object_source(obj) and os.path.exists(os.path.join(root, object_source(obj)))]
    defined, needs = {}, {}
    for obj in objects:
        source = object_source(obj)
        if layer_of_path(source) not in RANK:
            continue
        out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0] == "U":
                needs.setdefault(source, set()).add(fields[1])
            elif len(fields) == 3 and fields[1] in "TDBRV":
                defined.setdefault(fields[2], source)
    edges = {}
    for source, symbols in needs.items():
        for symbol in symbols:
            target = defined.get(symbol)
            if target is None or target == source:
                continue
            edges.setdefault(source, set()).add(target)
            if RANK[layer_of_path(target)] > RANK[layer_of_path(source)]:
                problems.append(f"{source} calls {symbol} of {target}, a higher layer")
    for cycle in circles(edges):
        problems.append("files need each other: " + " <-> ".join(cycle))
    return len(objects)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root, build = sys.argv[1], sys.argv[2]
    problems = []
    n_files = check_includes(root, problems) + check_clients(root, problems)
    n_objects = check_calls(root, build, problems)
    if n_objects == 0:
        problems.append(f"no compiled objects under {build}: nothing to check the calls of")
    for p in problems:
        print(p)
    print(f"{n_files} files, {n_objects} objects: {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
