"""The `symcodec` command line: thin click wrappers, one library call per command."""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import click

from .bench import atrate
from .bench.rd import run_and_save as run_rd_and_save
from .bench.rd import summary as rd_summary
from .codebook.registry import entries, search_path
from .codebook.registry import install as install_codebook
from .codebook.registry import remove as remove_codebook
from .codebook.seed import import_faiss_index
from .codec.files import decode_file, describe, encode_file
from .data.convert import convert as run_convert
from .errors import SymcodecError, SymcodecWarning
from .jit import cache_is_warm
from .stream.net import receive as run_receive
from .stream.net import send as run_send
from .stream.receiver import MAX_PENDING, MAX_PIXELS, MAX_SENDER_BYTES
from .train.kmeans import train_codebook as run_train, train_ycc420
from .train.ppm import train_context as run_train_context
from .version import __version__


_COMPILES = {"encode", "decode", "convert", "eval", "send", "receive", "train-codebook", "train-context", "train-classifier", "attack"}


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """symcodec's own warnings as one line on stderr; others as Python prints them."""
    if issubclass(category, SymcodecWarning):
        print(f"symcodec: warning: {message}", file=sys.stderr if file is None else file)
    else:
        _show_warning(message, category, filename, lineno, file, line)


_show_warning = warnings.showwarning


class _Group(click.Group):
    """Turn symcodec errors (and OS errors) into one-line messages and a non-zero exit."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        warnings.showwarning = _one_line_warning
        pa = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args  # the subcommand's name, before it runs
        sub = next(iter(pa or ctx.args), None)
        if sub in _COMPILES and not cache_is_warm():
            click.echo("symcodec: first use on this machine: compiling the codec's kernels (about 20 s, once)", err=True)
        try:
            return super().invoke(ctx)
        except (SymcodecError, OSError) as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="symcodec")
def main() -> None:
    """symcodec: store images as symbols (nearest codebook centroids of small patches), range-coded.

    \b
    Examples:
      symcodec encode photo.jpg -o photo.sym
      symcodec decode photo.sym -o photo.png
      symcodec info photo.sym --json
      symcodec codebooks
    """


@main.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Output .sym file.")
@click.option("-c", "--codebook", default=None, help="Codebook name, id prefix, or .symcb/.index path.  [default: by image size: the quality ladder]")
@click.option("-q", "--quality", default=None, type=int, help="1..100: a rung of the ladder, or a transform codebook's steps.  [default: 92 for photos; a JPEG source's own tables]")
@click.option("--embed", is_flag=True, help="Embed the codebook, so the file decodes without a registry.")
@click.option("--compact", is_flag=True, help="The compact form (16 bytes of framing at 32x32 instead of 100) when the file is plain L/RGB.")
@click.option("--threads", default=1, show_default=True, help="Threads for the centroid search, or a photo's strips.")
def encode(src: str, output: str, codebook: str | None, quality: int | None, embed: bool, compact: bool, threads: int) -> None:
    """Encode an image file (anything Pillow reads) to .sym."""
    n = encode_file(src, output, codebook=codebook, quality=quality, embed_codebook=embed, threads=threads, compact=compact)
    click.echo(f"{output}: {n} bytes")


@main.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Output image (format from extension).")
@click.option("-c", "--codebook", default=None, help="Codebook to use if the file's is not installed.")
@click.option("--threads", default=1, show_default=True, help="Threads for a photo's strips.")
def decode(src: str, output: str, codebook: str | None, threads: int) -> None:
    """Decode a .sym file to PNG (or any format Pillow writes)."""
    decode_file(src, output, codebook=codebook, threads=threads)
    click.echo(output)


@main.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(src: str, as_json: bool) -> None:
    """Describe a .sym file: size, mode, codebook, bytes per part. Exits non-zero if it is invalid."""
    d = describe(src)
    if as_json:
        click.echo(json.dumps(d, indent=2))
    else:
        for k, v in d.items():
            click.echo(f"{k:>18}: {v}")


@main.command("train-codebook")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Output .symcb file.")
@click.option("-k", "--centroids", "k", default=2048, show_default=True, help="Number of centroids K.")
@click.option("--patch", default=2, show_default=True, type=click.Choice(["2", "4", "8"]), help="Patch size p (p x p).")
@click.option("--seed", default=0, show_default=True, help="Random seed (sampling and k-means).")
@click.option("--max-patches", default=2_000_000, show_default=True, help="Cap on sampled training patches.")
@click.option("--niter", default=25, show_default=True, help="k-means iterations.")
@click.option("--limit", default=None, type=int, help="Use at most this many images.")
@click.option("--name", default="", help="Registry name stored in the codebook.")
@click.option("--context-model/--no-context-model", default=False, show_default=True, help="Also fit entropy model 3 (context tables; codebook format 3).")
@click.option("--colour", default="planes", show_default=True, type=click.Choice(["planes", "ycc420"]), help="planes: R, G, B (or L) planes; ycc420: Y, Cb, Cr with 2x2-subsampled chroma (always with entropy model 3).")
@click.option("--install", is_flag=True, help="Also install it in the user codebook folder (symcodec codebooks install).")
def train_codebook(sources: tuple[str, ...], output: str, k: int, patch: str, seed: int, max_patches: int, niter: int, limit: int | None, name: str, context_model: bool, colour: str,
                   install: bool) -> None:
    """Train a codebook with faiss k-means on JPEG/PNG folders, tar archives or MNIST idx files."""
    cmd = "symcodec " + " ".join(sys.argv[1:])
    train = train_ycc420 if colour == "ycc420" else run_train
    kw = {} if colour == "ycc420" else {"context_model": context_model}
    cb = train(list(sources), k, patch=int(patch), seed=seed, max_patches=max_patches, niter=niter,
               name=name or Path(output).stem, limit_images=limit, command=cmd, **kw)
    cb.save(output)
    click.echo(f"{output}: K={cb.k} patch={cb.patch} id={cb.hexid}")
    if install:
        click.echo(f"installed {install_codebook(output)}")


@main.command("train-classifier")
@click.argument("dataset", type=click.Path(exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Output weights (.pt); the card goes beside it (.md).")
@click.option("--test", "test_set", type=click.Path(exists=True), default=None, help="Held-out labelled set for the reported accuracy.  [default: a stratified 10% of DATASET, never trained on]")
@click.option("--arch", default=None, type=click.Choice(["airnet", "resnet20", "mnistnet", "lenet"]), help="Architecture.  [default: mnistnet for 28x28 grey, else airnet]")
@click.option("--epochs", default=None, type=float, help="Epochs.  [default: 2 for mnistnet, 10 for airnet]")
@click.option("--init", default=None, help="Fine-tune these weights (shipped name or .pt path).")
@click.option("--on-reconstructions", default=None, help="Train on the reconstructions of these codebooks or codec settings (comma-separated, e.g. cifar10-ycc420-k256-ppm,webp:30), to read what the codec gives.")
@click.option("--mix-clean", default=0, show_default=True, type=click.IntRange(0), help="With --on-reconstructions: the clean images as one more version, drawn this many times as often.")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True, help="torch threads.")
@click.option("--limit", default=None, type=int, help="Use N evenly spaced images of DATASET.")
@click.option("--adversarial", default=None, help="Adversarial training: fgsm-rs, n-fgsm, pgd-K or trades-K (K steps).")
@click.option("--trades-beta", default=6.0, show_default=True, type=click.FloatRange(0, 1000), help="--adversarial trades-K: weight of the KL term.")
@click.option("--eps", default="0", help="--adversarial: the Linf radius on [0, 1] pixels, e.g. 0.3 or 8/255.")
@click.option("--eps-warmup", default=0.0, show_default=True, type=float, help="--adversarial: epochs over which eps grows linearly from 0.")
@click.option("--purify-in-loop", default=None, help="--adversarial: train through this codebook's purifier, or a --defense of `robustness` (sym:CB,random=R); straight-through backward.")
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False), help="Checkpoint after every epoch; a rerun resumes from it exactly.  [default: OUTPUT.ckpt]")
@click.option("--stop-after", default=None, type=click.IntRange(1), help="Stop this run after N epochs (checkpointed; rerun to go on).")
@click.option("--device", default="cpu", show_default=True, help="torch device: cpu, cuda, cuda:N or auto (a checkpoint resumes on any).")
@click.option("--amp", is_flag=True, help="Mixed precision: forward and backward in bfloat16 autocast (weights stay float32).")
def train_classifier_cmd(dataset: str, output: str, test_set: str | None, arch: str | None, epochs: float | None, init: str | None,
                         on_reconstructions: str | None, mix_clean: int, seed: int, threads: int, limit: int | None,
                         adversarial: str | None, trades_beta: float, eps: str, eps_warmup: float, purify_in_loop: str | None,
                         checkpoint: str | None, stop_after: int | None, device: str, amp: bool) -> None:
    """Train a classifier on a labelled dataset (class folders, tars, WebDataset, MNIST idx); symcodec eval -m OUTPUT uses it."""
    from .train.classifier import train_classifier  # the [torch] extra

    meta = train_classifier(dataset, output, test=test_set, arch=arch, epochs=epochs, init=init,
                            on_reconstructions=on_reconstructions.split(",") if on_reconstructions else (), mix_clean=mix_clean,
                            seed=seed, threads=threads, limit=limit, command="symcodec " + " ".join(sys.argv[1:]),
                            adversarial=adversarial, eps=eps, eps_warmup=eps_warmup, purify_in_loop=purify_in_loop,
                            checkpoint=checkpoint or str(Path(output).with_suffix(".ckpt")), stop_after=stop_after,
                            device=device, amp=amp, trades_beta=trades_beta)
    if "stopped" in meta:
        h = meta["history"][-1] if meta["history"] else {}
        extra = f", PGD-10 check {h['check_pgd10_acc']:.1f}%" if "check_pgd10_acc" in h else ""
        click.echo(f"stopped after epoch {meta['stopped']} (train accuracy {h.get('train_acc', 0):.1f}%{extra}); "
                   f"rerun the same command to resume from {meta['checkpoint']}")
        return
    acc = ", ".join(f"{k} {v:.2f}%" for k, v in meta["test_accuracy"].items())
    click.echo(f"{output}: {meta['arch']}, {len(meta['classes'])} classes, held-out accuracy {acc} (card: {Path(output).with_suffix('.md')})")


@main.command("import-codebook")
@click.argument("index", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Output .symcb file.")
@click.option("--name", default="", help="Registry name.")
def import_codebook(index: str, output: str, name: str) -> None:
    """Convert a SymDNN faiss .index codebook to .symcb."""
    cb = import_faiss_index(index, name=name)
    cb.save(output)
    click.echo(f"{output}: K={cb.k} patch={cb.patch} id={cb.hexid}")


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def codebooks(ctx: click.Context, as_json: bool) -> None:
    """List installed codebooks: name, id, K, patch, trained on (or: install FILE, remove NAME)."""
    if ctx.invoked_subcommand is not None:
        return
    es = entries()
    if as_json:
        click.echo(json.dumps([{**e.__dict__, "path": str(e.path)} for e in es], indent=2))
        return
    w = max([22, *(len(e.name) for e in es)])
    click.echo(f"{'name':<{w}} {'id':<12} {'K':>5} {'patch':>5}  trained on")
    for e in es:
        click.echo(f"{e.name:<{w}} {e.id[:12]:<12} {e.k:>5} {e.patch:>3}x{e.patch:<1}  {e.trained_on}")
    click.echo("searched: " + ", ".join(str(p) for p in search_path()), err=True)


@codebooks.command("install")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Install under this name.  [default: the codebook's own name, else the file name]")
def codebooks_install(file: str, name: str | None) -> None:
    """Copy a .symcb file into the user codebook folder, so files that need it decode anywhere on this machine."""
    click.echo(f"installed {install_codebook(file, name)}")


@codebooks.command("remove")
@click.argument("name")
def codebooks_remove(name: str) -> None:
    """Delete an installed codebook (name or id prefix) from the user folder."""
    click.echo(f"removed {remove_codebook(name)}")


@main.command()
@click.argument("src", type=click.Path(exists=True))
@click.option("--to", "to", required=True, help="Receiver HOST:PORT.")
@click.option("--rate", type=float, default=None, help="Pace to this many bit/s (default: as fast as possible).")
@click.option("--packet-size", default=255, show_default=True, help="Largest packet in bytes (LoRa: 255).")
@click.option("--tcp", is_flag=True, help="Use TCP instead of UDP.")
@click.option("-c", "--codebook", default=None, help="Codebook for images (.sym files keep theirs).  [default: cifar10-2x2-k2048]")
@click.option("--raw", is_flag=True, help="Send the files' bytes as FILE packets instead of symbols.")
@click.option("--limit", type=int, default=None, help="Send at most this many images.")
@click.option("--manifest", type=click.Path(dir_okay=False), default=None, help="Write image ids, names and labels here (for receive --labels).")
@click.option("--fec", default=0, show_default=True, help="Add one XOR parity packet per this many bands (0: off).")
def send(src: str, to: str, rate: float | None, packet_size: int, tcp: bool, codebook: str | None, raw: bool, limit: int | None, manifest: str | None, fec: int) -> None:
    """Stream images (a file, folder, tar, or .sym files) as packets (formats/stream.md)."""
    click.echo(json.dumps(run_send(src, to, rate=rate, size=packet_size, tcp=tcp, codebook=codebook, raw=raw, limit=limit, manifest=manifest, fec=fec)))


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--listen", required=True, help="HOST:PORT to listen on.")
@click.option("--tcp", is_flag=True, help="Accept TCP connections instead of UDP datagrams.")
@click.option("--classify", default=None, help="Classify each image on arrival with this model (symcodec.models.load).")
@click.option("--timeout", default=30.0, show_default=True, help="Stop after this many seconds without packets (0: never; Ctrl-C stops).")
@click.option("--expect", type=int, default=None, help="Stop after this many images.")
@click.option("--image-timeout", default=5.0, show_default=True, help="Finish an incomplete image after this many idle seconds.")
@click.option("-c", "--codebook", default=None, help="Codebook to use instead of looking the stream's id up.")
@click.option("--labels", type=click.Path(dir_okay=False), default=None, help="A send --manifest file: report accuracy with --classify.")
@click.option("--max-pixels", default=MAX_PIXELS, show_default=True, type=click.IntRange(1), help="Refuse streamed images larger than this (W x H).")
@click.option("--max-pending", default=MAX_PENDING, show_default=True, type=click.IntRange(1), help="Unfinished images kept at once (the oldest is finished).")
@click.option("--max-sender-bytes", default=MAX_SENDER_BYTES, show_default=True, type=click.IntRange(1), help="Bytes of unfinished images one sender may hold.")
def receive(out: str, listen: str, tcp: bool, classify: str | None, timeout: float, expect: int | None, image_timeout: float, codebook: str | None, labels: str | None,
            max_pixels: int, max_pending: int, max_sender_bytes: int) -> None:
    """Receive streamed images into OUT/ (PNG + .sym, report.json), concealing lost bands."""
    r = run_receive(listen, out, tcp=tcp, timeout=timeout, expect=expect, classify=classify, codebook=codebook,
            image_timeout=image_timeout, labels=labels, ready=lambda a: click.echo(f"listening on {a[0]}:{a[1]}", err=True),
            max_pixels=max_pixels, max_pending=max_pending, max_bytes_per_sender=max_sender_bytes)
    click.echo(json.dumps({k: v for k, v in r.items() if k != "items"}))


@main.command()
@click.argument("src", type=click.Path(exists=True))
@click.argument("dst", type=click.Path())
@click.option("--to", "to", type=click.Choice(["sym", "png", "jpeg"]), default=None, help="Output format.  [default: sym; png when SRC holds .sym files]")
@click.option("-c", "--codebook", default=None, help="Codebook for --to sym.  [default: each image's size picks one: the quality ladder]")
@click.option("--embed", is_flag=True, help="Embed the codebook in every .sym file.")
@click.option("--compact", is_flag=True, help="Write .sym files in the compact form where they allow it (formats/sym.md section 9).")
@click.option("-j", "--workers", default=None, type=int, help="Worker processes (0: in this process).  [default: CPU count]")
@click.option("--shard-size", default=None, type=int, help="Images per tar shard; DST must be a pattern like out-%05d.tar.  [default: 10000 with a pattern]")
@click.option("--chunk", default=None, type=int, help="Images per worker task.  [default: 256; 1024 with --engine ray]")
@click.option("--limit", default=None, type=int, help="Convert only the first N images of SRC.")
@click.option("-q", "--quality", default=None, type=int, help="1..100: the .sym quality ladder (--to sym), or the JPEG quality (--to jpeg, default 95).")
@click.option("--manifest", default=None, type=click.Path(dir_okay=False), help="Manifest/journal path.  [default: DST/manifest.jsonl, or NAME.manifest.jsonl beside a tar]")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: a process pool on this machine; ray: Ray Data actors on a Ray cluster (the [ray] extra).")
@click.option("--address", default=None, help="--engine ray: the cluster (auto, or HOST:PORT of `ray start --head`).  [default: RAY_ADDRESS, else a local Ray]")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def convert(src: str, dst: str, to: str | None, codebook: str | None, embed: bool, compact: bool, workers: int | None, shard_size: int | None,
            chunk: int | None, limit: int | None, quality: int, manifest: str | None, engine: str, address: str | None, as_json: bool) -> None:
    """Convert a dataset (image folder, tar, WebDataset tar, MNIST idx) to .sym files or tar shards, or back.

    \b
    Resumable: rerun the same command after a crash to finish. Exits 1 if any image failed.
    Examples:
      symcodec convert cifar10-jpeg/test.tar test-sym.tar -j 2
      symcodec convert imgs/ sym-%05d.tar --shard-size 5000
      symcodec convert test-sym.tar pngs/ --to png
      symcodec convert /nfs/photos /nfs/out/photos-%05d.tar --engine ray --address auto
    """
    if address is not None and engine != "ray":
        raise click.UsageError("--address needs --engine ray")
    s = run_convert(src, dst, to=to, codebook=codebook, embed_codebook=embed, compact=compact, quality=quality, workers=workers, chunk=chunk,
            shard_size=shard_size, limit=limit, manifest=manifest, engine=engine, address=address)
    click.echo(json.dumps(s.as_dict(), indent=2) if as_json else s.text())
    if s.total_failures:
        sys.exit(1)


@main.command("eval")
@click.argument("dataset", type=click.Path(exists=True))
@click.option("-m", "--model", "models", multiple=True, help="Classifier: shipped name (weights/NAME.pt) or a .pt path; repeat to compare; the first is primary. Without one: rate-distortion on unlabelled images.")
@click.option("--codec", "codecs", multiple=True, required=True, help="sym:CB|qQ|CB@Q[,...] | symc:... (compact form) | jpeg:Q[,Q...] | webp:Q,... | avif:Q,... | jxl:Q,...; repeatable.")
@click.option("--limit", default=None, type=int, help="Use N images (evenly spaced through a labelled DATASET; the first N otherwise).")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False), help="Write the result JSON (CompressAI bench shape).")
@click.option("--plot", "plot_out", default=None, type=click.Path(dir_okay=False), help="Write the plot (PNG).")
@click.option("--threads", default=2, show_default=True, help="torch threads (classifiers).")
@click.option("--at-bpp", "at_bpp", multiple=True, type=float, help="With -m: each codec's top-1 read off its curve at this rate, with paired bootstrap intervals (symcodec.bench.atrate); repeatable.")
def eval_cmd(dataset: str, models: tuple[str, ...], codecs: tuple[str, ...], limit: int | None, json_out: str | None,
             plot_out: str | None, threads: int, at_bpp: tuple[float, ...]) -> None:
    """Compression against classifier accuracy (with -m), or against PSNR and MS-SSIM with BD-rates (without).

    \b
    Examples:
      symcodec eval cifar10-jpeg/test.tar -m cifar10-airnet2 --codec sym:cifar10-ycc420-k512-ppm \\
          --codec jpeg:10,30,50,75,90 --codec webp:10,30,50,75,90 --codec avif:20,40,60 --json r.json --plot r.png
      symcodec eval cifar10-jpeg/test.tar -m cifar10-airnet3 --codec symc:cifar10-ycc420-k256-ppm,cifar10-ycc420-k512-ppm \\
          --codec webp:30,40,50 --at-bpp 2.0      # each codec's top-1 at 2.0 bpp, paired bootstrap intervals
      symcodec eval photos/test --codec sym:q20,q40,q60,q80,q90 --codec jpeg:20,40,60,80,90 --json rd.json --plot rd.png
    """
    if models:
        from .bench.evaluate import run_and_save, summary  # torch: the [torch] extra

        res = run_and_save(dataset, list(models), list(codecs), limit, json_out, plot_out, threads, at_bpp=list(at_bpp))
        click.echo(summary(res))
        for a in res.get("at_bpp", []):
            click.echo("\n" + atrate.text(a))
        return
    if at_bpp:
        raise click.UsageError("--at-bpp needs a classifier (-m)")
    click.echo(rd_summary(run_rd_and_save(dataset, list(codecs), limit, json_out, plot_out)))


@main.command()
@click.argument("dataset")
@click.option("--model", required=True, help="Classifier: shipped name/path, or seed-cifar10 / seed-cifar10-holdout.")
@click.option("--defense", "defenses", multiple=True, default=("sym:cifar10-2x2-k2048",), show_default=True,
              help="none | sym:CODEBOOK[,random=R][,backward=soft][,T=F] | jpeg:Q | bits:B (repeatable).")
@click.option("--attack", "attacks", default="pgd", show_default=True,
              help="Attacks separated by '+': e.g. 'model-pgd+transfer+pgd+apgd-dlr+square'; options as pgd:steps=200;restarts=10.")
@click.option("--eps", default="2/255,4/255,8/255", show_default=True, help="Linf budgets on raw [0,1] pixels.")
@click.option("--limit", type=int, default=None, help="Evenly spaced subset of this many test images.")
@click.option("--surrogate", default=None, help="Separately trained model for the transfer attack.")
@click.option("--draws", default=10, show_default=True, help="Forward passes per verdict for a randomized purifier.")
@click.option("--batch", default=100, show_default=True, help="Images per attack batch (and per state checkpoint).")
@click.option("--early-stop/--no-early-stop", default=True, show_default=True,
              help="Attack only examples every earlier attack failed on (worst case); off gives standalone numbers.")
@click.option("--state", default=None, help="Resume file (default: JSON path + .state).")
@click.option("--json", "json_out", default=None, help="Write the result JSON here.")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=1, show_default=True, help="torch/faiss threads (1 is fastest on a shared 2-core box).")
@click.option("--device", default="cpu", show_default=True, help="torch device for models, attacks and the VQ search (cpu, cuda).")
def robustness(dataset: str, model: str, defenses: tuple[str, ...], attacks: str, eps: str, limit: int | None,
               surrogate: str | None, draws: int, batch: int, early_stop: bool, state: str | None, json_out: str | None,
               seed: int, threads: int, device: str) -> None:
    """Robust accuracy of purification defenses under Linf attacks (per-example worst case, resumable)."""
    from .robust.report import robustness as run, table  # torch: the [torch] extra

    res = run(dataset, model, list(defenses), [a.replace(";", ",") for a in attacks.split("+") if a], eps, limit=limit,
              surrogate=surrogate, draws=draws, batch=batch, early_stop=early_stop, state=state, json_out=json_out,
              seed=seed, threads=threads, device=device)
    click.echo(table(res))


@main.command("train-context")
@click.argument("codebook")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Output .symcb file.")
@click.option("--limit", default=None, type=int, help="Use at most this many images.")
@click.option("--name", default="", help="Registry name of the new codebook.")
@click.option("--min-count", default=3, show_default=True, type=click.IntRange(1), help="Keep symbols seen at least this often in a row.")
@click.option("--min-total", default=8, show_default=True, type=click.IntRange(1), help="Keep rows with at least this many samples.")
def train_context(codebook: str, sources: tuple[str, ...], output: str, limit: int | None, name: str, min_count: int,
                  min_total: int) -> None:
    """Add entropy model 3 (escape-chain context tables) to a codebook, fitted on training images: a new codebook."""
    cb = run_train_context(codebook, list(sources), output, name=name or Path(output).stem, limit_images=limit,
                           command="symcodec " + " ".join(sys.argv[1:]), cmin=min_count, tmin=min_total)
    click.echo(f"{output}: K={cb.k} patch={cb.patch} entropy model 3 id={cb.hexid}")


if __name__ == "__main__":  # pragma: no cover
    main()
