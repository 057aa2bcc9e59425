import json

import nbformat
import pytest

from deepgen_helpers import bench, config, publish


def test_record_writes_only_inside_a_benchmark(tmp_path, monkeypatch):
    monkeypatch.delenv(bench.METRICS_ENV, raising=False)
    assert bench.record(fid=1.23456) == {"fid": 1.2346}
    target = tmp_path / "m.json"
    target.write_text("")
    monkeypatch.setenv(bench.METRICS_ENV, str(target))
    bench.record(a=1.0)
    bench.record(b=2)
    assert json.loads(target.read_text()) == {"a": 1.0, "b": 2}


def test_lesson_selection():
    stems = [p.stem for p in bench.lesson_paths(["00", "01"])]
    assert stems == ["00_welcome_and_setup", "01_generative_modelling_basics"]
    assert all("solutions" not in p.parts for p in bench.lesson_paths())
    with pytest.raises(SystemExit, match="No lesson matches"):
        bench.lesson_paths(["99"])


def test_markdown_table():
    row = {"lesson": "01_x", "mode": "default", "device": "cpu", "wall_s": 61.2, "peak_mb": 812.4, "metrics": {"fid": 3.1}}
    table = bench.markdown_table([row])
    assert "| 01_x | default | cpu | 61 s | 812 MB | fid = 3.1 |" in table


def test_badge_and_colab_block_come_from_the_one_repo_url():
    badge = publish.colab_badge("notebooks/01_x.ipynb")
    owner_repo = config.REPO_URL.split("github.com/")[1]
    assert f"colab.research.google.com/github/{owner_repo}/blob/{config.REPO_BRANCH}/notebooks/01_x.ipynb" in badge
    block = publish.colab_block()
    assert config.REPO_URL in block and block.startswith(publish.BLOCK_START) and block.endswith(publish.BLOCK_END)
    compile(block, "colab_block", "exec")  # valid Python
    # runs harmlessly outside Colab
    exec(block, {})


def test_clean_outputs_drops_widget_state_and_views():
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"state": {}}
    cell = nbformat.v4.new_code_cell("x")
    cell.metadata["execution"] = {"t": 1}
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc"}, "text/plain": "bar"})]
    nb.cells = [cell]
    publish.clean_outputs(nb)
    assert "widgets" not in nb.metadata and "execution" not in cell.metadata
    assert cell.outputs[0]["data"] == {"text/plain": "(interactive widget: run the notebook to use it)"}


def test_sync_rewrites_readme_links_from_repo_url(monkeypatch, tmp_path):
    (tmp_path / "notebooks").mkdir()
    old = "https://colab.research.google.com/github/someone/old/blob/dev/notebooks/01_x.ipynb"
    (tmp_path / "README.md").write_text(f"[badge]({old}) and more")
    monkeypatch.setattr(publish, "repo_root", lambda: tmp_path)
    assert publish.sync(check=True) == ["README.md"]
    publish.sync()
    assert publish.colab_url("notebooks/01_x.ipynb") in (tmp_path / "README.md").read_text()
    assert publish.sync(check=True) == []
