"""Format version 3: the entropy coder starts from the model's learned bit tables.

Real bundles (the tiny exported network, its tables counted by the real command), real files,
and the CLI as a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_image

import ir2icodec
from ir2icodec import api, bittables, entropy
from ir2icodec.container import read_container, read_header_and_version, write_container
from ir2icodec.errors import ModelError, ModelMismatchError, TablesNeededError
from ir2icodec.runtime import load_model

LAYOUT = entropy.CodeLayout(8, 4, 4)


def random_tables(rng: np.random.Generator, stages: int = 8) -> entropy.BitTables:
    contexts = LAYOUT.channels * 81
    ones = rng.integers(0, 400, (stages, contexts))
    zeros = rng.integers(0, 400, (stages, contexts))
    return entropy.BitTables(zeros=zeros, ones=ones)


def correlated_stages(rng: np.random.Generator, blocks: int, count: int) -> list[np.ndarray]:
    """Stage bits a context model can predict: each stage a noisy copy of the one before."""
    first = (rng.random((blocks, LAYOUT.bits)) < 0.3).astype(np.uint8)
    stages = [first]
    for _ in range(count - 1):
        flip = rng.random(first.shape) < 0.1
        stages.append(stages[-1] ^ flip.astype(np.uint8))
    return stages


def test_stage_bits_round_trip_with_tables_and_depend_on_them():
    rng = np.random.default_rng(0)
    tables = random_tables(rng)
    stages = correlated_stages(rng, 37, 3)
    previous = (rng.random((37, LAYOUT.bits)) < 0.5).astype(np.uint8)
    data = entropy.encode_stage_bits(stages, previous, LAYOUT, first_stage=4, tables=tables)
    back = entropy.decode_stage_bits(data, 3, 37, previous, LAYOUT, first_stage=4, tables=tables)
    assert all((a == b).all() for a, b in zip(stages, back))
    # Other tables, or other stages' rows of the same tables, read other bits (or refuse).
    for other in (
        dict(first_stage=4, tables=random_tables(np.random.default_rng(1))),
        dict(first_stage=1, tables=tables),
        dict(first_stage=4, tables=None),
    ):
        try:
            wrong = entropy.decode_stage_bits(data, 3, 37, previous, LAYOUT, **other)
        except entropy.EntropyError:
            continue
        assert any((a != b).any() for a, b in zip(stages, wrong))


def test_learned_tables_cost_less_than_empty_counts_on_codes_like_theirs():
    """Tables counted on codes like the chunk's save bits on a small chunk (the case version
    2's empty counts handle worst); tables of the opposite statistics cost more."""
    rng = np.random.default_rng(2)
    training = [correlated_stages(rng, 300, 8) for _ in range(4)]
    ones, totals = bittables.count_contexts(training, (8, 4, 4))
    tables = bittables.tables_from_counts(ones, totals, weight=64)
    small = correlated_stages(rng, 12, 8)
    v2 = entropy.stage_bit_costs(small, None, LAYOUT)
    v3 = entropy.stage_bit_costs(small, None, LAYOUT, tables=tables)
    assert sum(c.sum() for c in v3) < 0.9 * sum(c.sum() for c in v2)
    # Codes of other statistics (mostly ones, no stage repeating the last): the tables
    # mislead where empty counts would have learned.
    other = [(rng.random((12, LAYOUT.bits)) < 0.8).astype(np.uint8) for _ in range(8)]
    v3_other = entropy.stage_bit_costs(other, None, LAYOUT, tables=tables)
    v2_other = entropy.stage_bit_costs(other, None, LAYOUT)
    assert sum(c.sum() for c in v3_other) > sum(c.sum() for c in v2_other)


def test_counted_contexts_are_the_coders_contexts():
    """``bittables.fine_contexts`` numbers every bit as the coder does, position by position."""
    rng = np.random.default_rng(3)
    codes = (rng.random((9, LAYOUT.bits)) < 0.5).astype(np.uint8)
    previous = (rng.random((9, LAYOUT.bits)) < 0.5).astype(np.uint8)
    counted = bittables.fine_contexts(codes.reshape(9, 8, 4, 4), previous.reshape(9, 8, 4, 4))
    counted = counted.reshape(9, -1)
    for k in range(LAYOUT.bits):
        fine, _ = entropy._position_context(LAYOUT, codes, previous, k)
        assert (counted[:, k] == fine).all()


def test_tables_are_worth_at_most_their_weight_and_unseen_contexts_start_empty():
    ones = np.array([[0.0, 3.0, 900.0, 5.0]])
    totals = np.array([[0.0, 4.0, 1000.0, 5.0]])
    tables = bittables.tables_from_counts(ones, totals, weight=16)
    mass = (tables.zeros + tables.ones) / entropy.COUNT_SCALE
    assert mass[0, 0] == 0  # never seen: version 2's empty start
    assert mass[0, 1] == pytest.approx(4, abs=0.1)  # seen 4 times: worth 4
    assert mass[0, 2] == pytest.approx(16, abs=0.1)  # seen 1000 times: worth the weight
    assert tables.ones[0, 2] / (tables.zeros[0, 2] + tables.ones[0, 2]) == pytest.approx(0.9, 0.01)


def test_a_model_with_tables_writes_version_3_and_reads_its_version_2_files(
    tiny_bundle, tables_bundle
):
    image = smooth_image(70, 90)
    plain, tabled = load_model(tiny_bundle), load_model(tables_bundle)
    assert plain.bit_tables is None and tabled.bit_tables is not None
    assert plain.digest == tabled.digest  # the tables leave the weights' digest alone
    v2 = ir2icodec.encode(image, quality=60, model=plain)
    v3 = ir2icodec.encode(image, quality=60, model=tabled)
    assert ir2icodec.info(v2)["format_version"] == 2
    assert ir2icodec.info(v3)["format_version"] == 3
    # The same codes, coded from other starting counts: the same picture.
    same = ir2icodec.decode(v2, model=tabled, output="numpy", postfilter=False)
    assert (same == ir2icodec.decode(v3, model=tabled, output="numpy", postfilter=False)).all()
    header, version = read_header_and_version(v3)
    assert version == 3 and header.model_digest == tabled.file_digest(3) != tabled.digest
    with pytest.raises(ModelMismatchError, match="bit tables"):
        ir2icodec.decode(v3, model=plain)
    with pytest.raises(TablesNeededError):
        read_container(v3)
    # Structure only (info, summary) needs no tables.
    assert read_container(v3, codes=False).stages_found == header.stages


def test_other_tables_under_the_same_weights_are_refused(tmp_path, tables_bundle):
    """A version-3 file names its tables through the model digest: a bundle whose tables
    were counted again (other photos, other weight) is another model for that file."""
    v3 = ir2icodec.encode(smooth_image(40, 60), stages=4, model=tables_bundle)
    recounted = tmp_path / "recounted"
    shutil.copytree(tables_bundle, recounted)
    tables = load_model(tables_bundle).bit_tables
    bumped = entropy.BitTables(zeros=tables.zeros + 16, ones=tables.ones)
    manifest = json.loads((recounted / "model.json").read_text())
    data = bittables.tables_bytes(bumped)
    (recounted / bittables.TABLES_FILE).write_bytes(data)
    manifest["bit_tables"]["sha256"] = bittables.sha256(data)
    (recounted / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelMismatchError, match="another version"):
        ir2icodec.decode(v3, model=str(recounted))


@pytest.mark.parametrize(
    "damage",
    ["bytes", "shape", "range", "manifest"],
)
def test_damaged_tables_are_a_model_error(tmp_path, tables_bundle, damage):
    bundle = tmp_path / "damaged"
    shutil.copytree(tables_bundle, bundle)
    path = bundle / bittables.TABLES_FILE
    manifest = json.loads((bundle / "model.json").read_text())
    if damage == "bytes":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x40  # one count changed: the hash no longer matches
        path.write_bytes(bytes(data))
    elif damage == "manifest":
        manifest["bit_tables"]["file"] = "../elsewhere.npy"
    else:
        tables = load_model(tables_bundle).bit_tables
        if damage == "shape":
            forged = entropy.BitTables(zeros=tables.zeros[:3], ones=tables.ones[:3])
        else:
            forged = entropy.BitTables(zeros=tables.zeros * 0 + 2**30, ones=tables.ones)
        data = bittables.tables_bytes(forged)
        path.write_bytes(data)
        manifest["bit_tables"]["sha256"] = bittables.sha256(data)
    (bundle / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError):
        model = load_model(str(bundle))
        ir2icodec.encode(smooth_image(40, 60), stages=3, model=model)


def test_truncating_a_version_3_file_is_the_encoders_file_of_fewer_stages(tmp_path, tables_bundle):
    image = smooth_image(64, 96, seed=4)
    full = ir2icodec.encode(image, stages=6, model=tables_bundle)
    fewer = ir2icodec.encode(image, stages=3, model=tables_bundle)
    assert api.truncate(full, 3, model=tables_bundle) == fewer
    source, out = tmp_path / "full.ir2i", tmp_path / "three.ir2i"
    source.write_bytes(full)
    run = subprocess.run(
        [sys.executable, "-m", "ir2icodec", "truncate", str(source), "-o", str(out), "-s", "3"]
        + ["--model", tables_bundle],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert out.read_bytes() == fewer
    # Without the model that made it (the file names no shipped model): one line, no file.
    lost = tmp_path / "lost.ir2i"
    run = subprocess.run(
        [sys.executable, "-m", "ir2icodec", "truncate", str(source), "-o", str(lost), "-s", "3"],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and not lost.exists()
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_writer_refuses_version_3_without_tables_and_mixed_requests(tables_bundle):
    model = load_model(tables_bundle)
    v3 = ir2icodec.encode(smooth_image(40, 60), stages=3, model=model)
    c = read_container(v3, tables=model.bit_tables)
    with pytest.raises(TablesNeededError):
        write_container(c.header, c.stage_bits, stage_counts=c.stage_counts, version=3)
    with pytest.raises(ValueError):
        write_container(c.header, c.stage_bits, version=3, tables=model.bit_tables)
    again = write_container(
        c.header, c.stage_bits, c.ancillary, stage_counts=c.stage_counts, tables=model.bit_tables
    )
    assert again == v3


def test_shipped_default_model_writes_version_3():
    model = load_model(None)
    assert model.format_version == 3 and model.bit_tables is not None
    about = model.manifest["bit_tables"]
    assert about["weight"] == bittables.DEFAULT_WEIGHT and about["photos"] >= 100


def test_tables_file_is_what_the_manifest_says(tables_bundle):
    manifest = json.loads((Path(tables_bundle) / "model.json").read_text())
    data = (Path(tables_bundle) / bittables.TABLES_FILE).read_bytes()
    assert manifest["bit_tables"]["sha256"] == bittables.sha256(data)
    assert manifest["bit_tables"]["weight"] == 64


def test_entropy_benchmark_compares_all_three_codings(tmp_path, tables_bundle, photo_dir):
    out = tmp_path / "entropy.md"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.entropy", "--data", str(photo_dir)]
        + ["--model", tables_bundle, "--stages", "3", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    total = out.read_text().splitlines()[-1].split("|")
    raw, v2, v3 = int(total[2]), int(total[3]), int(total[5])
    assert 0 < v3 < raw and 0 < v2 < raw


def test_the_weight_is_compared_on_held_out_photos(tmp_path, tiny_bundle, photo_dir):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    run = subprocess.run(
        [sys.executable, "-m", "ir2icodec.training.bit_tables", "--model", str(bundle)]
        + ["--data", str(photo_dir), "--photos", "2", "--holdout-percent", "40"]
        + ["--compare-on", str(photo_dir), "--compare-weights", "4,64"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    rows = [line.split("|") for line in run.stdout.splitlines() if line.startswith("| ")]
    assert [r[1].strip() for r in rows[1:]] == ["version 2 (empty counts)", "4", "64"]
    assert all(int(r[2]) > 0 for r in rows[1:])
    assert load_model(str(bundle)).format_version == 3


def test_a_stage_beyond_the_tables_is_data_that_does_not_decode():
    rng = np.random.default_rng(5)
    tables = random_tables(rng, stages=3)
    stages = correlated_stages(rng, 5, 1)
    data = entropy.encode_stage_bits(stages, None, LAYOUT, first_stage=3, tables=tables)
    with pytest.raises(entropy.EntropyError):
        entropy.decode_stage_bits(data, 1, 5, stages[0], LAYOUT, first_stage=4, tables=tables)


def test_export_counts_the_tables_the_bit_tables_command_counts(
    tmp_path, tiny_coder_model, photo_dir
):
    """``ir2i export --bit-tables-from DATA`` makes a bundle that writes version 3, with the
    very tables the separate command counts on the same photos afterwards."""
    import torch
    from click.testing import CliRunner

    from ir2icodec.training.export import main as export_main

    ckpt = tmp_path / "c.pt"
    state = {"config": tiny_coder_model.cfg.to_dict(), "model": tiny_coder_model.state_dict()}
    torch.save(state, ckpt)
    together, later = tmp_path / "together", tmp_path / "later"
    runner = CliRunner()
    r = runner.invoke(
        export_main,
        [str(ckpt), str(together), "--name", "t", "--bit-tables-from", str(photo_dir)],
    )
    assert r.exit_code == 0, r.output
    assert "bit_tables.npy" in r.output
    r = runner.invoke(export_main, [str(ckpt), str(later), "--name", "t"])
    assert r.exit_code == 0, r.output
    assert load_model(str(later)).format_version == 2
    subprocess.run(
        [sys.executable, "-m", "ir2icodec.training.bit_tables", "--model", str(later)]
        + ["--data", str(photo_dir)],
        check=True,
        capture_output=True,
    )
    assert load_model(str(together)).format_version == 3
    assert (together / bittables.TABLES_FILE).read_bytes() == (
        later / bittables.TABLES_FILE
    ).read_bytes()
