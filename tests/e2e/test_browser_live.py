"""In a real Chromium, pages follow the engine as it runs (issue 15): with `engine serve --run` replaying
a candle every half second, an open bot page's chart gains the new candles in place (the same chart,
no page reload), pushed by the server's tail of the store rather than drawn once."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Screen

pytestmark = pytest.mark.slow

# The newest x-axis label of the ECharts instance under the "Chart" heading (NiceGUI's getElement gives
# the component, whose ``chart`` is the ECharts instance); null until it is drawn.
LAST_CANDLE = """
const canvas = document.evaluate("//*[normalize-space()='Chart']/following::canvas", document, null,
    XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
let node = canvas;
while (node && !(node.id && node.id.startsWith('c') && getElement(node.id.slice(1))
                 && getElement(node.id.slice(1)).chart)) {
  node = node.parentElement;
}
if (!node) return null;
const axis = getElement(node.id.slice(1)).chart.getOption().xAxis[0].data;
return axis[axis.length - 1];
"""


def test_the_bot_chart_grows_in_place_while_the_bot_runs(screen: Screen) -> None:
    screen.sign_in("vera")
    bot = screen.server.first_bot()
    screen.open(f"/bot/{bot}")
    screen.wait_for_text("Configuration")
    first = screen.wait(lambda: screen.driver.execute_script(LAST_CANDLE), what="the chart's newest candle")
    screen.driver.execute_script("window.notReloaded = true")
    later = screen.wait(
        lambda: (last := screen.driver.execute_script(LAST_CANDLE)) and last > first and last,
        timeout=90,
        what=f"a candle after {first} on the open chart",
    )
    assert screen.driver.execute_script("return window.notReloaded === true")  # the same page, updated
    assert later > first
    screen.shoot("bot-chart-grown")
