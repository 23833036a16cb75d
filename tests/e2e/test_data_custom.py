"""The Dataset node's upload with a preview (image thumbnails), and the CustomLayer code editor
with the server's custom-code notice."""

from __future__ import annotations

import io
import zipfile

from PIL import Image
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.e2e.test_editor import add_by_enter, drag_from_palette, saved, select_node


def image_zip(path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, color in {
            "pets/cat/1.png": (255, 0, 0),
            "pets/cat/2.png": (250, 10, 0),
            "pets/dog/1.png": (0, 0, 255),
            "pets/dog/2.png": (0, 10, 250),
        }.items():
            buf = io.BytesIO()
            Image.new("RGB", (8, 8), color).save(buf, format="PNG")
            zf.writestr(name, buf.getvalue())


def test_dataset_upload_preview_and_custom_layer(page, live, tmp_path):
    login(page, live)
    page.get_by_test_id("menu-project").click()
    page.get_by_test_id("menu-new").click()
    expect(page.locator(".react-flow__node")).to_have_count(0)
    drag_from_palette(page, "Dataset", 140, 120)
    select_node(page, "dataset1")
    expect(page.get_by_test_id("dataset-info")).to_contain_text("samples")

    archive = tmp_path / "pets.zip"
    image_zip(archive)
    page.get_by_test_id("dataset-file").set_input_files(str(archive))
    expect(page.get_by_test_id("toast")).to_contain_text("Uploaded pets.zip")
    preview = page.get_by_test_id("dataset-preview")
    expect(preview).to_contain_text("4 samples")
    expect(preview).to_contain_text("cat: 2")
    expect(preview.locator("canvas.thumb")).to_have_count(4)
    expect(page.get_by_test_id("node-shape-dataset1")).to_contain_text("x: (B, 3, 8, 8)")
    expect(page.get_by_test_id("param-source")).to_have_value('"file"')

    # a CustomLayer: the Python editor, and the plain notice that this server runs no custom code
    add_by_enter(page, "CustomLayer")
    select_node(page, "customlayer1")
    expect(page.get_by_test_id("custom-code-off")).to_be_visible()
    editor = page.locator('[data-testid="field-code"] .cm-content')
    expect(editor).to_contain_text("return x * self.scale")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" + 1")
    expect(editor).to_contain_text("return x * self.scale + 1")
    saved(page)
    pid = page.url.split("#/p/")[1]
    _, project = live.call("GET", f"/api/projects/{pid}")
    custom = next(n for n in project["document"]["nodes"] if n["id"] == "customlayer1")
    assert custom["params"]["code"] == "return x * self.scale + 1"
    data = next(n for n in project["document"]["nodes"] if n["id"] == "dataset1")
    assert data["params"]["source"] == "file" and data["params"]["dataset_id"]
