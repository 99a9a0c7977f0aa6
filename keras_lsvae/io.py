"""Atomic writes: a reader (or a process resumed after a SIGKILL) never sees half a file.

Every artifact the package writes (``model.keras``, ``metrics.json``, ``config.json``,
``flags.txt``, ``history.json``, checkpoints, sample grids and figures, exports, evaluation
caches, benchmark outputs) goes through one of these helpers: the content is written to a
temporary file in the destination's folder (``.tmp-<stem>-<pid>-<n><extension>``: the same
extension, so writers that infer the format from it, Keras, matplotlib, NumPy, still do),
flushed to disk (``fsync``) and renamed over the destination (``os.replace``, atomic on POSIX
within one file system), then the folder is fsynced so the rename itself survives a power
loss. On an exception the temporary file is removed and the destination is untouched; a kill
can leave only a ``.tmp-*`` file beside it, which nothing reads.

Folders (a checkpoint, an exported SavedModel version) are staged the same way with
:func:`staging_directory` and put in place whole with :func:`claim_directory` (fails if the
name is taken) or :func:`replace_directory`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import os
import shutil
import tempfile

TMP_PREFIX = ".tmp-"
_counter = itertools.count(1)


def _split_name(name):
    """``("model", ".keras")``, ``("ckpt", ".weights.h5")``: the stem up to the first dot (a
    leading dot kept in the stem) and everything after it."""
    head = name[1:] if name.startswith(".") else name
    stem, dot, rest = head.partition(".")
    return (name[:1] if name.startswith(".") else "") + stem, (dot + rest if dot else "")


def temporary_path(path) -> str:
    """A fresh name beside ``path`` with its extension: ``<dir>/.tmp-<stem>-<pid>-<n><ext>``."""
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    stem, extension = _split_name(name)
    return os.path.join(directory, f"{TMP_PREFIX}{stem}-{os.getpid()}-{next(_counter)}{extension}")


def fsync_directory(path) -> None:
    """fsync a folder (makes the renames and creations in it durable)."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; nothing more can be done
        pass
    finally:
        os.close(fd)


def fsync_file(path) -> None:
    with open(os.fspath(path), "rb") as f:
        os.fsync(f.fileno())


def fsync_tree(path) -> None:
    """fsync every file and folder under ``path`` (and ``path``), before it is renamed."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        fsync_file(path)
        return
    for root, _, files in os.walk(path):
        for name in files:
            fsync_file(os.path.join(root, name))
        fsync_directory(root)


def remove(path) -> None:
    """Remove a file or a folder tree if it exists (no error if it does not)."""
    path = os.fspath(path)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _make_parent(path) -> str:
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(parent, exist_ok=True)
    return parent


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; when the block ends without an exception the file
    (or folder) written there is fsynced and renamed over ``path``. On an exception it is
    removed and ``path`` is left as it was."""
    path = os.fspath(path)
    parent = _make_parent(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        fsync_tree(tmp)
        os.replace(tmp, path)
    except BaseException:
        remove(tmp)
        raise
    fsync_directory(parent)


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_kwargs):
    """``open(path, mode)`` for writing, atomically: ``with atomic_write(p) as f: f.write(...)``.
    ``mode`` is ``"w"``/``"wb"`` (``"x"`` modes are not atomic replacements; refused)."""
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_write writes a whole new file: mode 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path, text: str, encoding="utf-8") -> str:
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)
    return os.fspath(path)


def atomic_write_bytes(path, content: bytes) -> str:
    with atomic_write(path, "wb") as f:
        f.write(content)
    return os.fspath(path)


def atomic_write_json(path, obj, **dump_kwargs) -> str:
    """``json.dump(obj, ...)`` into ``path`` atomically (keyword arguments go to ``json.dump``).
    The object is serialised first, so an unserialisable one writes nothing."""
    text = json.dumps(obj, **dump_kwargs)
    return atomic_write_text(path, text)


def atomic_save_model(model, path, **save_kwargs) -> str:
    """``model.save(path)`` through ``<dir>/.tmp-<stem>-<pid>-<n>.keras`` and a rename."""
    with atomic_path(path) as tmp:
        model.save(tmp, **save_kwargs)
    return os.fspath(path)


def atomic_save_weights(model, path) -> str:
    """``model.save_weights(path)`` (``path`` ends in ``.weights.h5``) atomically."""
    with atomic_path(path) as tmp:
        model.save_weights(tmp)
    return os.fspath(path)


def atomic_savefig(fig, path, **savefig_kwargs) -> str:
    """``fig.savefig(path, ...)`` atomically (the format follows ``path``'s extension)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **savefig_kwargs)
    return os.fspath(path)


def atomic_imsave(path, array, **imsave_kwargs) -> str:
    """``matplotlib.image.imsave(path, array, ...)`` atomically."""
    import matplotlib.image

    with atomic_path(path) as tmp:
        matplotlib.image.imsave(tmp, array, **imsave_kwargs)
    return os.fspath(path)


def atomic_savez(path, **arrays) -> str:
    """``np.savez(path, **arrays)`` atomically (``.npz`` appended as NumPy does)."""
    import numpy as np

    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)
    return path


def atomic_copy(source, destination) -> str:
    """``shutil.copyfile(source, destination)`` atomically."""
    with atomic_path(destination) as tmp:
        shutil.copyfile(source, tmp)
    return os.fspath(destination)


def file_digest(path) -> dict:
    """``{"bytes": size, "sha256": hex digest}`` of a file (checkpoint manifests)."""
    digest = hashlib.sha256()
    with open(os.fspath(path), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


@contextlib.contextmanager
def staging_directory(parent, name="stage"):
    """A new empty folder ``<parent>/.tmp-<name>-<pid>-<random>`` (a name TF Serving and the
    checkpoint reader ignore), removed when the block ends (after a successful
    :func:`claim_directory`/:func:`replace_directory` it is already gone)."""
    os.makedirs(parent, exist_ok=True)
    path = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{name}-{os.getpid()}-", dir=parent)
    try:
        yield path
    finally:
        if os.path.lexists(path):
            remove(path)


def claim_directory(staged, final) -> None:
    """Put the complete folder ``staged`` in place as ``final`` with one rename, after fsyncing
    it. Raises ``FileExistsError`` if ``final`` exists (another writer claimed the name)."""
    staged, final = os.fspath(staged), os.fspath(final)
    fsync_tree(staged)
    if os.path.lexists(final):
        raise FileExistsError(errno.EEXIST, "already exists", final)
    try:
        os.rename(staged, final)
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):  # claimed in between
            raise FileExistsError(errno.EEXIST, "already exists", final) from None
        raise
    fsync_directory(os.path.dirname(os.path.abspath(final)))


def replace_directory(staged, final) -> None:
    """Put the complete folder ``staged`` in place as ``final``, replacing an existing one: the
    old folder is renamed aside (a ``.tmp-`` name) first and removed only after the new one is
    in place."""
    staged, final = os.fspath(staged), os.fspath(final)
    fsync_tree(staged)
    old = None
    if os.path.lexists(final):
        parent, name = os.path.split(os.path.abspath(final))
        old = os.path.join(parent, f"{TMP_PREFIX}old-{name}-{os.getpid()}-{next(_counter)}")
        os.rename(final, old)
    try:
        os.rename(staged, final)
    except BaseException:
        if old is not None:
            os.rename(old, final)  # put the previous one back
        raise
    fsync_directory(os.path.dirname(os.path.abspath(final)))
    if old is not None:
        remove(old)
