"""Live output: two pages on one kernel, and a page whose connection drops mid-stream."""

from playwright.sync_api import expect

from tests.browser.notebook_page import OUTPUT

TICKS = "import time\nfor i in range({n}):\n    print('tick', i, flush=True)\n    time.sleep({pause})\nprint('done')"


def stream_lines(cell):
    return cell.locator(".output-stream").inner_text().strip().split("\n")


def test_second_page_watches_the_same_kernel(notebook):
    """A second page attached to the kernel shows what ran before, live output as it comes, and its own runs show in the first."""
    first = notebook.run("x = 21\nprint('defined x')")
    notebook.wait_done(first)
    watcher = notebook.open_another()
    watcher.button("Shut down").click()  # its own kernel: it will watch the first page's instead
    watcher.wait_for_kernel("none")
    watcher.page.get_by_label("kernel").select_option(f"kernel:{notebook.kernel_id}")
    watcher.button("Attach").click()
    watcher.wait_for_kernel("idle")
    assert watcher.kernel_id == notebook.kernel_id
    earlier = watcher.page.locator(".cell", has_text="x = 21")
    expect(earlier.locator(".output-area")).to_have_text("defined x", timeout=OUTPUT)
    expect(earlier.locator(".cell-note")).to_contain_text("another page")

    running = notebook.run(TICKS.format(n=30, pause=0.05))
    live = watcher.page.locator(".cell", has_text="tick")
    expect(live.locator(".output-stream")).to_contain_text("tick 3", timeout=OUTPUT)
    expect(live.locator(".output-stream")).to_contain_text("done", timeout=OUTPUT)
    notebook.wait_done(running)
    expected = [f"tick {i}" for i in range(30)] + ["done"]
    assert stream_lines(live) == expected
    assert stream_lines(running) == expected
    watcher.screenshot("watching")

    answer = watcher.run("print(x * 2)")
    watcher.wait_done(answer)
    mirrored = notebook.page.locator(".cell", has_text="print(x * 2)")
    expect(mirrored.locator(".output-area")).to_have_text("42", timeout=OUTPUT)
    notebook.screenshot("watched-back")


def test_prompt_says_done_only_with_the_last_output_drawn(notebook):
    """Output is drawn in animation frames; the prompt's [n] must not show before the cell's last output does."""
    index = notebook.active_index()
    notebook.type("print('the last line')")
    # Frames never come, so drawn output waits for the batcher's fallback timer;
    # record what the output area shows at the moment the prompt turns to [n].
    notebook.page.evaluate("""(index) => {
      window.requestAnimationFrame = () => 0;
      const cell = document.querySelectorAll('.notebook > .cell')[index];
      const prompt = cell.querySelector('.cell-prompt');
      window.shownWhenDone = null;
      new MutationObserver(() => {
        if (window.shownWhenDone === null && /\\[\\d+\\]:/.test(prompt.textContent)) {
          window.shownWhenDone = cell.querySelector('.output-area').textContent;
        }
      }).observe(prompt, { childList: true, characterData: true, subtree: true });
    }""", index)
    notebook.page.keyboard.press("Shift+Enter")
    notebook.wait_done(notebook.cell(index))
    assert notebook.page.evaluate("window.shownWhenDone").strip() == "the last line"


def test_dropped_connection_catches_up_without_loss_or_repeats(notebook):
    """The WebSocket drops mid-stream: the page reconnects, the code keeps running, every line shows once."""
    sockets = []

    def proxy(route):
        sockets.append((route, route.connect_to_server()))

    page = notebook.page
    page.route_web_socket("**/ws", proxy)
    page.reload()
    notebook.wait_for_kernel("idle", 60_000)
    cell = notebook.run(TICKS.format(n=60, pause=0.04))
    expect(cell.locator(".output-stream")).to_contain_text("tick 5", timeout=OUTPUT)
    client_side, server_side = sockets[-1]
    client_side.close()
    server_side.close()
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "reconnecting", timeout=OUTPUT)
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected", timeout=OUTPUT)
    notebook.wait_done(cell)
    expect(cell.locator(".output-stream")).to_contain_text("done", timeout=OUTPUT)
    assert len(sockets) >= 2
    assert stream_lines(cell) == [f"tick {i}" for i in range(60)] + ["done"]
    assert "KeyboardInterrupt" not in notebook.outputs(cell).inner_text()
    notebook.screenshot("after-reconnect")


def test_silent_connection_is_noticed_by_the_heartbeat(notebook):
    """The link goes silent without closing (a partition): the heartbeat call gets no answer, the page connects again and works."""
    sockets = []

    def proxy(route):
        sockets.append((route, route.connect_to_server()))

    page = notebook.page
    page.clock.install()  # time runs as usual; run_for jumps ahead, firing the page's timers
    page.route_web_socket("**/ws", proxy)
    page.reload()
    notebook.wait_for_kernel("idle", 60_000)
    client_side, server_side = sockets[-1]
    client_side.on_message(lambda message: None)  # nothing reaches the service any more,
    server_side.on_message(lambda message: None)  # nothing reaches the page: no close either
    with page.expect_websocket(timeout=OUTPUT):
        page.clock.run_for(45_000)  # 15 to 30 s of quiet, then 10 s without an answer
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected", timeout=OUTPUT)
    assert len(sockets) == 2
    cell = notebook.run("print('after the partition')")
    notebook.wait_done(cell)
    expect(cell.locator(".output-stream")).to_contain_text("after the partition", timeout=OUTPUT)
    notebook.screenshot("after-partition")
