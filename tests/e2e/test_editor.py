"""The editor in a real browser: build a network from the palette (drag and Enter), wire it,
see shapes on edges and nodes, errors (badge, Problems, focus), the generated code, undo/redo,
autosave and reload, examples, export/import, blocks, copy/paste, shortcut help."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.server_live import TOKEN


def drag_from_palette(page, node_type: str, x: float, y: float) -> None:
    search = page.get_by_test_id("palette-search")
    search.fill(node_type)
    page.get_by_test_id(f"palette-{node_type}").drag_to(
        page.get_by_test_id("canvas"), target_position={"x": x, "y": y}
    )
    search.fill("")


def add_by_enter(page, node_type: str) -> None:
    search = page.get_by_test_id("palette-search")
    search.fill(node_type)
    page.get_by_test_id(f"palette-{node_type}").focus()
    page.keyboard.press("Enter")
    search.fill("")


def center(locator) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def connect(page, source: str, source_port: str, target: str, target_port: str) -> None:
    sx, sy = center(page.get_by_test_id(f"port-out-{source}-{source_port}"))
    tx, ty = center(page.get_by_test_id(f"port-in-{target}-{target_port}"))
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move((sx + tx) / 2, (sy + ty) / 2, steps=5)
    page.mouse.move(tx, ty, steps=5)
    page.mouse.up()


def edge_label(page, source, sport, target, tport):
    return page.get_by_test_id(f"edge-label-{source}:{sport}->{target}:{tport}")


def select_node(page, node_id: str) -> None:
    page.get_by_test_id(f"node-{node_id}").locator(".gnode-title").click()
    expect(page.get_by_test_id("inspector-node")).to_have_attribute("data-node", node_id)


def click_empty_canvas(page) -> None:
    box = page.get_by_test_id("canvas").bounding_box()
    page.mouse.click(box["x"] + 30, box["y"] + box["height"] - 160)


def fit(page) -> None:
    """Fit the whole graph in view (long graphs open at a readable zoom from their left end,
    and React Flow only draws the nodes in view)."""
    click_empty_canvas(page)
    page.keyboard.press("f")
    page.wait_for_timeout(400)


def saved(page) -> None:
    expect(page.get_by_test_id("save-state")).to_have_text("Saved", timeout=10_000)


def test_token_login(page, live):
    # without the token: refused, with the hint to open the start URL
    response = page.goto(live.url + "/")
    assert response.status == 401 and "URL printed at start" in response.text()
    # a wrong token is refused
    assert page.goto(f"{live.url}/?token=wrong").status == 401
    # the start URL: token → cookie, dropped from the address bar, a first project opens
    login(page, live)
    assert "token" not in page.url
    cookies = {c["name"]: c for c in page.context.cookies()}
    cookie = cookies["torchloom_token"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    expect(page.get_by_test_id("save-state")).to_have_text("Saved")


def test_build_validate_edit_save_reload(page, live):
    login(page, live)
    page.get_by_test_id("menu-project").click()
    page.get_by_test_id("menu-new").click()
    expect(page.locator(".react-flow__node")).to_have_count(0)

    # the network, from the palette: by dragging, and one by Enter at the view's centre
    drag_from_palette(page, "Dataset", 110, 80)
    drag_from_palette(page, "Linear", 340, 80)
    add_by_enter(page, "ReLU")
    drag_from_palette(page, "Linear", 590, 80)
    drag_from_palette(page, "CrossEntropyLoss", 620, 300)
    drag_from_palette(page, "Adam", 130, 420)
    expect(page.locator(".react-flow__node")).to_have_count(6)
    for node_id in ("dataset1", "linear1", "relu1", "linear2", "crossentropyloss1", "adam1"):
        expect(page.get_by_test_id(f"node-{node_id}")).to_be_visible()

    # a new Linear has no out_features yet: the badge says so
    expect(page.get_by_test_id("node-error-linear1")).to_be_visible()

    connect(page, "dataset1", "x", "linear1", "in")
    connect(page, "linear1", "out", "relu1", "in")
    connect(page, "relu1", "out", "linear2", "in")
    connect(page, "linear2", "out", "crossentropyloss1", "input")
    connect(page, "dataset1", "y", "crossentropyloss1", "target")
    connect(page, "crossentropyloss1", "loss", "adam1", "loss")
    expect(page.locator(".react-flow__edge")).to_have_count(6)

    # a refused connection (a loss output into a tensor input) adds no edge and says why
    connect(page, "crossentropyloss1", "loss", "linear2", "in")
    expect(page.get_by_test_id("toast")).to_contain_text("Cannot connect")
    expect(page.locator(".react-flow__edge")).to_have_count(6)

    select_node(page, "linear1")
    page.get_by_test_id("param-out_features").fill("32")
    select_node(page, "linear2")
    page.get_by_test_id("param-out_features").fill("10")

    # shapes on edges and nodes
    expect(edge_label(page, "dataset1", "x", "linear1", "in")).to_have_text("B×64")
    expect(edge_label(page, "linear1", "out", "relu1", "in")).to_have_text("B×32")
    expect(edge_label(page, "dataset1", "y", "crossentropyloss1", "target")).to_have_text("B")
    expect(page.get_by_test_id("node-shape-linear2")).to_have_text("(B, 10)")
    expect(page.get_by_test_id("valid-state")).to_have_text("Valid")
    expect(page.get_by_test_id("inspector-out-out")).to_have_text("(B, 10)")

    # a bad param: error badge, inline error, Problems entry; clicking it focuses the node
    page.get_by_test_id("param-out_features").fill("0")
    expect(page.get_by_test_id("node-error-linear2")).to_be_visible()
    expect(page.get_by_test_id("field-error-out_features").first).to_be_visible()
    expect(page.get_by_test_id("valid-state")).to_have_text(re.compile(r"\d+ errors?"))
    page.get_by_test_id("node-error-linear2").hover()
    expect(page.locator(".tooltip-error")).to_contain_text("out_features")
    click_empty_canvas(page)
    expect(page.get_by_test_id("inspector-node")).to_have_count(0)
    page.get_by_test_id("tab-problems").click()
    problem = page.locator('[data-testid="problem"][data-node="linear2"]').first
    expect(problem).to_contain_text("out_features")
    problem.click()
    expect(page.get_by_test_id("inspector-node")).to_have_attribute("data-node", "linear2")
    page.get_by_test_id("param-out_features").fill("10")
    expect(page.get_by_test_id("node-error-linear2")).to_have_count(0)
    expect(page.get_by_test_id("valid-state")).to_have_text("Valid")

    # a bad connection (a 2-D tensor into a Conv2d): badge and Problems entry; undo fixes it
    add_by_enter(page, "Conv2d")
    expect(page.get_by_test_id("node-conv2d1")).to_be_visible()
    expect(page.get_by_test_id("inspector-node")).to_have_attribute("data-node", "conv2d1")
    page.get_by_test_id("param-out_channels").fill("8")
    connect(page, "linear1", "out", "conv2d1", "in")
    expect(page.locator(".react-flow__edge")).to_have_count(7)
    expect(page.get_by_test_id("node-error-conv2d1")).to_be_visible()
    page.get_by_test_id("tab-problems").click()
    expect(page.locator('[data-testid="problem"][data-node="conv2d1"]').first).to_be_visible()
    expect(page.get_by_test_id("problems-list")).to_contain_text("(B, 32)")
    click_empty_canvas(page)
    for _ in range(3):  # the edge, the param, the node
        page.keyboard.press("Control+z")
    expect(page.get_by_test_id("node-conv2d1")).to_have_count(0)
    expect(page.locator(".react-flow__edge")).to_have_count(6)
    expect(page.get_by_test_id("valid-state")).to_have_text("Valid")

    # the Code tab follows edits
    page.get_by_test_id("tab-code").click()
    code = page.get_by_test_id("code-view")
    expect(code).to_contain_text("nn.Linear(64, 32)")
    select_node(page, "linear1")
    page.get_by_test_id("param-out_features").fill("48")
    expect(code).to_contain_text("nn.Linear(64, 48)")
    expect(code).to_contain_text("nn.Linear(48, 10)")

    # undo / redo (keyboard, focus on the canvas)
    click_empty_canvas(page)
    page.keyboard.press("Control+z")
    expect(edge_label(page, "linear1", "out", "relu1", "in")).to_have_text("B×32")
    expect(code).to_contain_text("nn.Linear(64, 32)")
    page.keyboard.press("Control+Shift+z")
    expect(edge_label(page, "linear1", "out", "relu1", "in")).to_have_text("B×48")
    # deleting a node breaks the chain; undo brings it (and its edges) back
    select_node(page, "relu1")
    click_empty_canvas(page)
    select_node(page, "relu1")
    page.get_by_test_id("canvas").locator(".react-flow__pane").focus()
    page.keyboard.press("Delete")
    expect(page.get_by_test_id("node-relu1")).to_have_count(0)
    expect(page.get_by_test_id("node-error-linear2")).to_be_visible()
    page.get_by_test_id("undo").click()
    expect(page.get_by_test_id("node-relu1")).to_be_visible()
    expect(page.locator(".react-flow__edge")).to_have_count(6)
    expect(page.get_by_test_id("node-error-linear2")).to_have_count(0)

    # rename, autosave, reload: the project is intact
    page.get_by_test_id("project-name").fill("Digits by hand")
    page.get_by_test_id("project-name").press("Enter")
    saved(page)
    url = page.url
    page.reload()
    page.get_by_test_id("canvas").wait_for()
    assert page.url == url
    expect(page.locator(".react-flow__node")).to_have_count(6)
    expect(page.locator(".react-flow__edge")).to_have_count(6)
    expect(page.get_by_test_id("project-name")).to_have_value("Digits by hand")
    expect(edge_label(page, "linear1", "out", "relu1", "in")).to_have_text("B×48")
    # the server has the same document
    pid = url.split("#/p/")[1]
    status, project = live.call("GET", f"/api/projects/{pid}")
    assert status == 200 and project["name"] == "Digits by hand"
    assert len(project["document"]["nodes"]) == 6 and len(project["document"]["edges"]) == 6
    linear1 = next(n for n in project["document"]["nodes"] if n["id"] == "linear1")
    assert linear1["params"]["out_features"] == 48
    # versions were kept; restoring the first (the empty new project) makes a new version
    page.get_by_test_id("menu-project").click()
    page.get_by_test_id("menu-versions").click()
    versions = page.get_by_test_id("versions-list").locator("li")
    expect(versions.first).to_contain_text("Version")
    count = versions.count()
    assert count >= 3
    versions.last.get_by_role("button", name="Restore").click()
    expect(page.get_by_test_id("toast")).to_contain_text("Restored version 1")
    expect(page.locator(".react-flow__node")).to_have_count(0)
    status, listed = live.call("GET", f"/api/projects/{pid}/versions")
    assert len(listed["versions"]) == count + 1


def test_example_export_import(page, live, tmp_path):
    login(page, live)
    page.get_by_test_id("menu-project").click()
    page.get_by_test_id("menu-examples").click()
    page.get_by_test_id("example-residual_cnn").click()
    expect(page.get_by_test_id("project-name")).to_have_value("Residual CNN")
    fit(page)
    expect(page.locator(".react-flow__node")).to_have_count(12)
    expect(page.get_by_test_id("valid-state")).to_have_text("Valid")
    expect(edge_label(page, "stem_relu", "out", "blocks", "x")).to_have_text("B×32×8×8")
    page.get_by_test_id("tab-summary").click()
    expect(page.get_by_test_id("total-params")).to_have_text("56,362")

    # the document's block definitions are palette entries too
    page.get_by_test_id("palette-search").fill("residual")
    page.get_by_test_id("palette-block-ResidualBlock").focus()
    page.keyboard.press("Enter")
    page.get_by_test_id("palette-search").fill("")
    expect(page.get_by_test_id("node-block1")).to_contain_text("ResidualBlock")
    expect(page.get_by_test_id("port-in-block1-x")).to_have_count(1)
    click_empty_canvas(page)
    page.keyboard.press("Control+z")
    expect(page.get_by_test_id("node-block1")).to_have_count(0)

    # export, then import the file as a new project
    page.get_by_test_id("menu-project").click()
    with page.expect_download() as info:
        page.get_by_test_id("menu-export").click()
    path = tmp_path / "exported.json"
    info.value.save_as(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "torchloom.graph/1" and doc["name"] == "Residual CNN"
    assert len(doc["nodes"]) == 12 and "ResidualBlock" in doc["blocks"]
    first = page.url
    page.get_by_test_id("import-file").set_input_files(str(path))
    page.wait_for_function(f"() => location.href !== {json.dumps(first)}")
    expect(page.get_by_test_id("toast")).to_contain_text("Imported")
    fit(page)
    expect(page.locator(".react-flow__node")).to_have_count(12)
    expect(page.get_by_test_id("valid-state")).to_have_text("Valid")

    # dropping a .json file on the canvas imports it too
    second = page.url
    page.evaluate(
        """(text) => {
          const dt = new DataTransfer();
          dt.items.add(new File([text], 'dropped.json', { type: 'application/json' }));
          const canvas = document.querySelector('[data-testid="canvas"]');
          for (const type of ['dragover', 'drop']) {
            canvas.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true,
                                                       cancelable: true }));
          }
        }""",
        path.read_text(),
    )
    page.wait_for_function(f"() => location.href !== {json.dumps(second)}")
    expect(page.get_by_test_id("toast")).to_contain_text("Imported dropped.json")
    # the example and the first import already hold the name: a unique one (issue 14 bug 9)
    expect(page.get_by_test_id("project-name")).to_have_value("Residual CNN (3)")

    # open the block from its node, see its inside, come back
    page.get_by_test_id("node-blocks").dblclick()
    expect(page.get_by_test_id("scope-bar")).to_contain_text("ResidualBlock")
    expect(page.get_by_test_id("node-conv1")).to_be_visible()
    page.get_by_test_id("close-block").click()
    expect(page.get_by_test_id("node-blocks")).to_be_visible()


def test_blocks_clipboard_layout_help(page, live):
    login(page, live)
    page.get_by_test_id("menu-project").click()
    page.get_by_test_id("menu-examples").click()
    page.get_by_test_id("example-digits_mlp").click()
    expect(page.get_by_test_id("project-name")).to_have_value("Digits MLP")
    fit(page)
    expect(page.locator(".react-flow__node")).to_have_count(10)

    # multi-select fc2 + relu2 and group them into a block
    page.get_by_test_id("node-fc2").locator(".gnode-title").click()
    page.get_by_test_id("node-relu2").locator(".gnode-title").click(modifiers=["Control"])
    expect(page.locator(".react-flow__node.selected")).to_have_count(2)
    page.get_by_test_id("group-selection").click()
    expect(page.locator(".react-flow__node")).to_have_count(9)
    block = page.locator('[data-testid^="node-"][data-type="Block"]')
    expect(block).to_have_count(1)
    expect(page.get_by_test_id("valid-state")).to_have_text("Valid")
    # the repeat count, in the inspector, shows on the node and changes the model's size
    page.get_by_test_id("tab-summary").click()
    total = page.get_by_test_id("total-params")
    expect(total).to_have_text("17,226")
    page.get_by_test_id("param-repeat").fill("2")
    expect(block).to_contain_text("×2")
    expect(total).not_to_have_text("17,226")
    page.get_by_test_id("param-repeat").fill("1")
    expect(total).to_have_text("17,226")
    page.get_by_test_id("open-block").click()
    expect(page.get_by_test_id("scope-bar")).to_be_visible()
    expect(page.get_by_test_id("node-fc2")).to_be_visible()
    page.get_by_test_id("close-block").click()
    expect(page.get_by_test_id("scope-bar")).to_have_count(0)
    fit(page)
    expect(page.locator(".react-flow__node")).to_have_count(9)

    # copy / paste with the keyboard
    before = 9
    page.get_by_test_id("node-fc1").locator(".gnode-title").click()
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    expect(page.locator(".react-flow__node")).to_have_count(before + 1)
    page.keyboard.press("Control+d")
    expect(page.locator(".react-flow__node")).to_have_count(before + 2)
    # the node's context menu
    page.get_by_test_id("node-fc1").locator(".gnode-title").click(button="right")
    page.get_by_test_id("ctx-duplicate").click()
    expect(page.locator(".react-flow__node")).to_have_count(before + 3)
    click_empty_canvas(page)
    for _ in range(3):
        page.keyboard.press("Control+z")
    expect(page.locator(".react-flow__node")).to_have_count(before)

    # auto-layout moves nodes (undoable), and the shortcut help opens on ?
    page.get_by_test_id("auto-layout").click()
    expect(page.get_by_test_id("undo")).to_be_enabled()
    click_empty_canvas(page)
    page.keyboard.press("?")
    expect(page.get_by_test_id("shortcuts-table")).to_contain_text("Undo")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("dialog-shortcuts")).to_have_count(0)
    saved(page)

    # copy in one project, paste into another
    fit(page)
    page.get_by_test_id("node-fc1").locator(".gnode-title").click()
    page.keyboard.press("Control+c")
    page.get_by_test_id("menu-project").click()
    page.get_by_test_id("menu-new").click()
    expect(page.get_by_test_id("project-name")).to_have_value("Untitled")
    expect(page.locator(".react-flow__node")).to_have_count(0)
    click_empty_canvas(page)
    page.keyboard.press("Control+v")
    expect(page.locator(".react-flow__node")).to_have_count(1)
    expect(page.get_by_test_id("inspector-node")).to_have_attribute("data-node", "fc1")
    expect(page.get_by_test_id("param-out_features")).to_have_value("128")
    saved(page)


def test_api_still_needs_the_token(live):
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(live.url + "/api/catalog")
        raise AssertionError("expected 401")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
    req = urllib.request.Request(
        live.url + "/assets/none.js", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    try:
        urllib.request.urlopen(req)
        raise AssertionError("expected 404")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
