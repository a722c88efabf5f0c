"""``foundation hub list | info NAME | download NAME``: pretrained checkpoints from the shell."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from foundation.hub.atomic import atomic_folder
from foundation.hub.config import CONFIG_FILE, WEIGHTS_FILE, read_config
from foundation.hub.download import HUB_PREFIX, download_file, is_repo_id
from foundation.hub.hashing import verify_folder
from foundation.hub.pretrained import checkpoint_search_paths, pretrained_folders
from foundation.hub.push import published_files
from foundation.hub.resolve import LOCAL_PREFIX, looks_like_path, resolve_checkpoint


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``hub`` command and its ``list``, ``info`` and ``download`` actions."""
    parser = subparsers.add_parser(
        "hub",
        help="list, inspect and download pretrained checkpoints",
        description="Pretrained checkpoints: the shipped ones (checkpoints/ and "
        "$FOUNDATION_CHECKPOINTS), local folders and Hugging Face Hub repos (org/name).",
    )
    actions = parser.add_subparsers(dest="hub_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list the registered pretrained checkpoints")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=run_list)

    info = actions.add_parser("info", help="show a checkpoint's architecture, heads and inputs")
    info.add_argument("name", metavar="NAME", help="pretrained name, folder or Hub repo id")
    info.add_argument("--revision", help="Hub branch, tag or commit")
    info.add_argument("--json", action="store_true", help="print the whole config.json")
    info.set_defaults(func=run_info)

    download = actions.add_parser(
        "download", help="download (and verify) a checkpoint; print its folder"
    )
    download.add_argument("name", metavar="NAME", help="pretrained name, folder or Hub repo id")
    download.add_argument("--revision", help="Hub branch, tag or commit")
    download.add_argument("--out", type=Path, help="copy the verified files into this folder")
    download.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out folder"
    )
    download.set_defaults(func=run_download)

    package = actions.add_parser(
        "package", help="re-save a trained checkpoint as a named one with a model card"
    )
    package.add_argument("source", metavar="SOURCE", help="checkpoint folder, RUN/best or name")
    package.add_argument("--name", required=True, help="checkpoint name, e.g. part-s.sim10")
    package.add_argument("--card", type=Path, required=True, help="model-card YAML")
    package.add_argument("--out", type=Path, help="destination folder (default: checkpoints/NAME)")
    package.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    package.set_defaults(func=run_package)

    register_push(actions)

    register_convert(actions)


def run_package(args: argparse.Namespace) -> int:
    """Write the named checkpoint and print its folder."""
    from foundation.hub.package import package_checkpoint, read_card_file

    card, provenance = read_card_file(args.card)
    out = args.out or Path("checkpoints") / args.name
    folder = package_checkpoint(
        args.source,
        out,
        name=args.name,
        card=card,
        provenance=provenance,
        overwrite=args.overwrite,
    )
    print(folder)
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print the registered checkpoints (name, backbone, heads, inputs, where the weights are)."""
    rows = []
    for name, folder in pretrained_folders().items():
        config = read_config(folder)
        pointer = config.get("hub")
        has_weights = (folder / WEIGHTS_FILE).is_file()
        where = str(folder) if has_weights or not pointer else _hub_label(pointer)
        rows.append(
            {
                "name": name,
                "backbone": config["backbone"]["name"],
                "heads": sorted(config["heads"]),
                "features": len(config["feature_schema"]["particle_features"]),
                "source": where,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        searched = ", ".join(str(path) for path in checkpoint_search_paths())
        print(f"no pretrained checkpoints found (searched: {searched})")
        return 0
    header = ("NAME", "BACKBONE", "HEADS", "F", "SOURCE")
    table = [
        (r["name"], r["backbone"], ",".join(r["heads"]) or "-", str(r["features"]), r["source"])
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print a checkpoint's config summary (downloads only ``config.json`` from the Hub)."""
    config = _config_of(args.name, args.revision)
    if args.json:
        print(json.dumps(config, indent=2, sort_keys=True))
        return 0
    backbone = config["backbone"]
    schema = config["feature_schema"]
    print(f"name:        {config.get('name') or args.name}")
    print(
        f"format:      {config['format']} v{config['format_version']}, written by "
        f"foundation {config['library_version']}"
    )
    print(f"backbone:    {backbone['name']} {json.dumps(backbone['kwargs'], sort_keys=True)}")
    for name, head in config["heads"].items():
        labels = ", ".join(head.get("label_names") or []) or "-"
        print(
            f"head:        {name} ({head['type']}, {head.get('level')}, weight "
            f"{head.get('loss_weight')}; target {head.get('target')}; labels: {labels})"
        )
    if config.get("base"):
        base = config["base"]
        print(
            f"base:        {base['name_or_path']} @ {base.get('revision') or 'default'} "
            f"(sha256 {base['sha256']})"
        )
    print(f"particles:   {', '.join(schema['particle_features'])}")
    if schema.get("jet_features"):
        print(f"jet inputs:  {', '.join(schema['jet_features'])}")
    print(f"normalized:  {'yes' if schema.get('normalization') else 'no'}")
    if config.get("provenance"):
        print(f"provenance:  {json.dumps(config['provenance'], sort_keys=True)}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Resolve (download if needed) and verify a checkpoint; copy it to ``--out`` if given."""
    resolved = resolve_checkpoint(args.name, args.revision)
    read_config(resolved.folder)
    files = published_files(resolved.folder)  # verifies the hashes
    folder = resolved.folder
    if args.out is not None:
        with atomic_folder(args.out, overwrite=args.overwrite) as temporary:
            for name in files:
                target = temporary / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(resolved.folder / name, target)  # follows cache symlinks
            verify_folder(temporary, required=(CONFIG_FILE, WEIGHTS_FILE))
        folder = args.out
    print(folder)
    return 0


def _config_of(name: str, revision: str | None) -> dict[str, Any]:
    """config.json of a reference without fetching the weights."""
    is_local = name.startswith(LOCAL_PREFIX) or Path(name).is_dir() or looks_like_path(name)
    if (
        not is_local
        and name not in pretrained_folders()
        and (name.startswith(HUB_PREFIX) or is_repo_id(name))
    ):
        return read_config(download_file(name, CONFIG_FILE, revision).parent)
    return read_config(resolve_checkpoint(name, revision, fetch=False).folder)


def _hub_label(pointer: dict[str, Any]) -> str:
    revision = pointer.get("revision")
    return f"hf-hub:{pointer['repo_id']}" + (f"@{revision}" if revision else "")


def register_push(actions: argparse._SubParsersAction) -> None:
    """Add ``hub push FOLDER org/name``."""
    push = actions.add_parser(
        "push",
        help="verify a checkpoint folder and upload it to a Hugging Face Hub repo",
        description="Upload config.json, the weights, SHA256SUMS, the model card and license "
        "files of a checkpoint folder to a Hub model repo (created if missing). The token comes "
        "from $HF_TOKEN or `hf auth login`; $HF_ENDPOINT selects another Hub.",
    )
    push.add_argument("folder", metavar="FOLDER", type=Path, help="checkpoint folder")
    push.add_argument("repo_id", metavar="REPO", help="Hub repo id, org/name")
    push.add_argument("--revision", help="branch to commit to (created if missing)")
    push.add_argument("--message", help="commit message")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.set_defaults(func=run_push)


def run_push(args: argparse.Namespace) -> int:
    """Upload the folder and print the commit URL."""
    from foundation.hub.push import push_to_hub

    if not is_repo_id(args.repo_id):
        raise ValueError(f"REPO: expected a Hub repo id 'org/name', found {args.repo_id!r}")
    commit = push_to_hub(
        args.folder,
        args.repo_id,
        revision=args.revision,
        commit_message=args.message,
        private=args.private or None,
    )
    print(getattr(commit, "commit_url", commit))
    return 0


def register_convert(actions: argparse._SubParsersAction) -> None:
    """Add ``hub convert weaver ARCH STATE_DICT --data-config YAML --out FOLDER``."""
    convert = actions.add_parser(
        "convert",
        help="convert community weights (weaver-core state dicts) into a checkpoint folder",
        description="Convert a weaver-core state dict (e.g. the JetClass-trained ParticleNet) "
        "onto the project's backbone; outputs are proven equal by tests/test_weaver_*.py.",
    )
    convert.add_argument("framework", choices=["weaver"], help="where the weights come from")
    convert.add_argument("arch", metavar="ARCH", help="architecture: particlenet or part")
    convert.add_argument("state_dict", metavar="STATE_DICT", type=Path, help="the .pt file")
    convert.add_argument(
        "--data-config", type=Path, required=True, help="the weaver data config (YAML)"
    )
    convert.add_argument("--out", type=Path, required=True, help="destination folder")
    convert.add_argument("--name", help="checkpoint name, e.g. particlenet.jetclass-full")
    convert.add_argument("--card", type=Path, help="model-card YAML (see recipes/cards/)")
    convert.add_argument("--source-repo", help="repository the weights were published in")
    convert.add_argument("--source-commit", help="commit of that repository")
    convert.add_argument("--license", type=Path, help="license file to ship with the weights")
    convert.add_argument(
        "--options",
        default="{}",
        help="converter arguments as a JSON object, e.g. '{\"use_fusion\": true}'",
    )
    convert.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    convert.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    """Convert and print the checkpoint folder."""
    from foundation.convert import convert_weaver_file
    from foundation.hub.package import read_card_file

    try:
        options = json.loads(args.options)
    except ValueError as error:
        raise ValueError(
            f"--options: expected a JSON object, found {args.options!r} ({error})"
        ) from None
    if not isinstance(options, dict):
        raise ValueError(f"--options: expected a JSON object, found {args.options!r}")
    card = read_card_file(args.card)[0] if args.card else None
    folder = convert_weaver_file(
        args.arch,
        args.state_dict,
        args.data_config,
        args.out,
        name=args.name,
        options=options,
        card=card,
        repository=args.source_repo,
        commit=args.source_commit,
        license_file=args.license,
        overwrite=args.overwrite,
    )
    print(folder)
    return 0
