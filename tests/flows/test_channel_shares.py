"""Issue 23: each channel's shown figure follows its allocation and is pushed again when any channel sells
(the shop's and the platform's simulators)."""
from __future__ import annotations

from hub import handlers
from hub.bootstrap import HubContext
from hub.config import ChannelAllocation
from hub.flows.channel_stock import publish_figures

from .test_meituan_refunds import taken


def test_each_channels_figure_is_pushed_by_its_share_when_another_channel_sells(flow):
    """Meituan kept to half of each store's stock, the WeChat shop to 80 %: a platform order moves both
    channels' figures, each pushed as its own share says (the shop and the platform simulators)."""
    shares = {"meituan": ChannelAllocation(share=50), "wechat_shop": ChannelAllocation(share=80)}
    cfg = flow.ctx.config
    cfg = cfg.model_copy(update={"channels": [c.model_copy(update={"allocation": shares.get(c.id)})
                                              for c in cfg.channels]})
    flow.ctx = HubContext(cfg, flow.ctx.engine, flow.ctx.connector_factory)
    pairs = [("TEA-001", "S001")]
    for ch in cfg.channels:
        if ch.publish_to:                            # the mini-program's own checkout reads the API, nothing pushed
            publish_figures(flow.ctx, flow.ctx.connectors.channel(ch.publish_to), ch.id, ch.safety_stock, pairs)
    assert flow.sandbox.meituan.stock_of("TEA-001", "S001") == 4               # half of 10, less its 1
    assert flow.sandbox.wechat_shop.stock_of("TEA-001", "S001") == 7           # 80 % of 10, less its 1
    taken(flow, "6106", pick_type=1)                                             # 3 TEA-001 to the platform
    flow.deliver(handlers.STOCK_TO_SHOP, "stock.changed", sku="TEA-001", location_id="S001")
    assert flow.sandbox.meituan.stock_of("TEA-001", "S001") == 1               # 4 - 3: its share nearly gone
    assert flow.sandbox.wechat_shop.stock_of("TEA-001", "S001") == 6           # 7 left in the store, less its 1
