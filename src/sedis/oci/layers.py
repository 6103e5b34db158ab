"""The merged filesystem of an image's layers, without extracting anything.

Layers apply in order, as the OCI image spec's changeset rules say: an entry
replaces what was at its path (a non-directory replaces a whole subtree);
``.wh.NAME`` deletes NAME from the layers below; ``.wh..wh..opq`` empties its
directory of everything from the layers below. Whiteouts never touch entries
of their own layer.

Only metadata is kept for the whole tree; file contents are kept only for the
paths a caller wants (a scanner wants a handful of package databases), each
bounded. Symlinks and hardlinks to wanted files are resolved inside the image
root, and a second, targeted pass fetches link targets the first did not keep.
A layer whose entries would write through a symlink, or whose hardlinks
dangle, is refused: extracting it would reach outside its root.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Union

from sedis.core.errors import InvalidInputError
from sedis.oci.compression import MAX_LAYER_OUTPUT, MAX_RATIO, decompressed
from sedis.oci.model import Descriptor
from sedis.oci.streams import CHUNK
from sedis.oci.tarsafe import DIR, FILE, HARDLINK, SYMLINK, TarReader, iter_entries

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_SYMLINK_HOPS = 40

# A layer is a stream opener (preferred: it allows a second pass) or a stream.
LayerInput = Union[Callable[[], BinaryIO], BinaryIO]  # noqa: UP007 - a runtime alias
Want = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class MergedEntry:
    """One path of the merged tree, and the layer that put it there."""

    path: str
    kind: str  # file, dir, symlink, hardlink, char, block, fifo
    layer: int
    size: int
    mode: int
    linkname: str


@dataclass(slots=True)
class _Node:
    kind: str
    layer: int
    size: int = 0
    mode: int = 0
    link: str = ""
    # For files and hardlinks: the (layer, path) whose bytes this is.
    origin: tuple[int, str] | None = None
    children: dict[str, _Node] | None = field(default=None)


@dataclass(slots=True)
class _Limits:
    max_file: int
    max_total: int
    max_layer: int
    max_ratio: float | None
    total: int = 0


def _open(layer: LayerInput, index: int, passes: int) -> BinaryIO:
    if callable(layer):
        return layer()
    if passes and layer.seekable():
        layer.seek(0)
    elif passes:
        raise InvalidInputError(f"layer {index} is a one-shot stream; pass an opener instead")
    return layer


class _Tree:
    def __init__(self) -> None:
        self.root = _Node(DIR, -1, children={})

    def lookup(self, path: str) -> _Node | None:
        node = self.root
        if not path:
            return node
        for part in path.split("/"):
            if node.children is None:
                return None
            nxt = node.children.get(part)
            if nxt is None:
                return None
            node = nxt
        return node

    def remove(self, path: str) -> None:
        parent_path, _, name = path.rpartition("/")
        parent = self.lookup(parent_path)
        if parent is not None and parent.children is not None:
            parent.children.pop(name, None)

    def parent_for(self, path: str, layer: int, what: str) -> _Node:
        """The directory that will hold ``path``, creating missing parents."""
        node = self.root
        parts = path.split("/")[:-1]
        walked = []
        for part in parts:
            walked.append(part)
            assert node.children is not None
            nxt = node.children.get(part)
            if nxt is not None and nxt.kind == SYMLINK:
                raise InvalidInputError(
                    f"{what}: entry {path!r} goes through the symlink {'/'.join(walked)!r}"
                )
            if nxt is None or nxt.kind != DIR:
                nxt = _Node(DIR, layer, mode=0o755, children={})
                node.children[part] = nxt
            node = nxt
        return node

    def walk(self) -> Iterator[tuple[str, _Node]]:
        """Every path below the root, depth first, in sorted order."""

        def children(prefix: str, node: _Node) -> list[tuple[str, _Node]]:
            items = sorted((node.children or {}).items(), reverse=True)
            return [(f"{prefix}/{name}" if prefix else name, child) for name, child in items]

        stack = children("", self.root)
        while stack:
            path, node = stack.pop()
            yield path, node
            if node.children is not None:
                stack.extend(children(path, node))

    def resolve(self, path: str) -> _Node | None:
        """Follow symlinks as a chrooted process would (``..`` stops at the root)."""
        hops = 0
        parts = [p for p in path.split("/") if p]
        done: list[str] = []
        node = self.root
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                node = self.lookup("/".join(done)) or self.root
                continue
            if node.children is None:
                return None
            child = node.children.get(part)
            if child is None:
                return None
            if child.kind == SYMLINK:
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                target = child.link
                if target.startswith("/"):
                    done = []
                    node = self.root
                parts = [p for p in target.split("/") if p] + parts
                continue
            done.append(part)
            node = child
        return node


def _scan_layer(
    tree: _Tree,
    layer: LayerInput,
    index: int,
    want: Want | None,
    captured: dict[tuple[int, str], bytes | None],
    limits: _Limits,
) -> None:
    what = f"layer {index}"
    whiteouts: list[str] = []
    opaque: list[str] = []
    entries: list[tuple[str, str, int, int, str]] = []
    seen: dict[str, str] = {}
    stream = decompressed(_open(layer, index, 0), what, limits.max_layer, limits.max_ratio)
    with stream:
        for entry, reader in iter_entries(stream, what):
            name = entry.name
            if not name:
                continue
            base = posixpath.basename(name)
            if base.startswith(WHITEOUT):
                where = posixpath.dirname(name)
                if base == OPAQUE:
                    opaque.append(where)
                else:
                    hidden = base[len(WHITEOUT) :]
                    if hidden in ("", ".", ".."):
                        raise InvalidInputError(f"{what}: malformed whiteout {name!r}")
                    whiteouts.append(f"{where}/{hidden}" if where else hidden)
                continue
            previous = seen.get(name)
            if previous is not None and not (previous == DIR and entry.kind == DIR):
                raise InvalidInputError(f"{what}: duplicate entry {name!r}")
            seen[name] = entry.kind
            entries.append((name, entry.kind, entry.size, entry.mode, entry.linkname))
            if entry.kind == FILE and want is not None and want(name):
                captured[(index, name)] = _capture(reader, entry.size, name, what, limits)
        while stream.read(CHUNK):  # to the end, so the blob's digest is checked
            pass
    for path in opaque:
        node = tree.lookup(path)
        if node is not None and node.children is not None:
            node.children.clear()
    for path in whiteouts:
        tree.remove(path)
    for name, kind, size, mode, link in entries:
        parent = tree.parent_for(name, index, what)
        assert parent.children is not None
        leaf = posixpath.basename(name)
        existing = parent.children.get(leaf)
        if kind == DIR:
            if existing is not None and existing.kind == DIR:
                existing.layer, existing.mode = index, mode
            else:
                parent.children[leaf] = _Node(DIR, index, mode=mode, children={})
            continue
        node = _Node(kind, index, size=size, mode=mode, link=link)
        if kind == FILE:
            node.origin = (index, name)
        elif kind == HARDLINK:
            target = tree.lookup(link)
            if target is None or target.kind not in (FILE, HARDLINK):
                raise InvalidInputError(
                    f"{what}: hardlink {name!r} points to {link!r}, which is not a file here"
                )
            node.origin, node.size = target.origin, target.size
        parent.children[leaf] = node


def _capture(reader: TarReader, size: int, name: str, what: str, limits: _Limits) -> bytes | None:
    """Keep a wanted file's bytes; ``None`` marks one over the per-file bound."""
    if size > limits.max_file:
        return None
    limits.total += size
    if limits.total > limits.max_total:
        raise InvalidInputError(f"{what}: wanted files exceed {limits.max_total} bytes in total")
    return reader.read(size)


def _fetch(
    layers: Sequence[LayerInput],
    needed: Mapping[int, set[str]],
    captured: dict[tuple[int, str], bytes | None],
    limits: _Limits,
) -> None:
    """A second pass over just the layers holding link targets not yet kept."""
    for index, paths in sorted(needed.items()):
        what = f"layer {index}"
        opened = _open(layers[index], index, 1)
        stream = decompressed(opened, what, limits.max_layer, limits.max_ratio)
        with stream:
            for entry, reader in iter_entries(stream, what):
                if entry.kind == FILE and entry.name in paths:
                    captured[(index, entry.name)] = _capture(
                        reader, entry.size, entry.name, what, limits
                    )
            while stream.read(CHUNK):
                pass


def _merge(
    layers: Sequence[LayerInput],
    want: Want | None,
    captured: dict[tuple[int, str], bytes | None],
    limits: _Limits,
) -> _Tree:
    tree = _Tree()
    for index, layer in enumerate(layers):
        _scan_layer(tree, layer, index, want, captured, limits)
    return tree


def merged_files(
    layers: Sequence[LayerInput],
    want: Want,
    *,
    max_file_size: int = MAX_FILE_BYTES,
    max_total: int = MAX_TOTAL_BYTES,
    max_layer_bytes: int = MAX_LAYER_OUTPUT,
    max_ratio: float | None = MAX_RATIO,
) -> dict[str, tuple[int, bytes]]:
    """The wanted regular files of the merged image: path -> (layer index, bytes).

    ``want`` sees each path of the merged tree (relative, no leading slash);
    symlinks and hardlinks that ``want`` accepts give the bytes of what they
    point to, and the layer index is the one those bytes came from. A wanted
    file over ``max_file_size`` is an InvalidInputError naming it.
    """
    limits = _Limits(max_file_size, max_total, max_layer_bytes, max_ratio)
    captured: dict[tuple[int, str], bytes | None] = {}
    tree = _merge(layers, want, captured, limits)
    results: dict[str, tuple[int, str]] = {}
    for path, node in tree.walk():
        if node.kind not in (FILE, HARDLINK, SYMLINK) or not want(path):
            continue
        target = tree.resolve(path) if node.kind == SYMLINK else node
        if target is None or target.kind not in (FILE, HARDLINK) or target.origin is None:
            continue  # dangling or pointing at a directory or device: no file here
        results[path] = target.origin
    needed: dict[int, set[str]] = {}
    for origin in results.values():
        if origin not in captured:
            needed.setdefault(origin[0], set()).add(origin[1])
    if needed:
        _fetch(layers, needed, captured, limits)
    out: dict[str, tuple[int, bytes]] = {}
    for path, origin in sorted(results.items()):
        data = captured.get(origin)
        if data is None:
            raise InvalidInputError(
                f"layer {origin[0]}: {path} is larger than the {max_file_size}-byte limit"
            )
        out[path] = (origin[0], data)
    return out


def merged_tree(
    layers: Sequence[LayerInput],
    *,
    max_layer_bytes: int = MAX_LAYER_OUTPUT,
    max_ratio: float | None = MAX_RATIO,
) -> dict[str, MergedEntry]:
    """Every path of the merged image with its kind, size, mode, link and layer."""
    limits = _Limits(0, 0, max_layer_bytes, max_ratio)
    tree = _merge(layers, None, {}, limits)
    return {
        path: MergedEntry(path, node.kind, node.layer, node.size, node.mode, node.link)
        for path, node in tree.walk()
    }


def source_layers(source: object) -> list[Callable[[], BinaryIO]]:
    """Openers for an ImageSource's layers, each stream verified as it is read."""
    from sedis.oci.source import ImageSource

    assert isinstance(source, ImageSource)

    def opener(desc: Descriptor) -> Callable[[], BinaryIO]:
        return lambda: source.open_blob(desc)

    return [opener(desc) for desc in source.manifest.layers]


__all__ = ["MergedEntry", "merged_files", "merged_tree", "source_layers"]
