"""O2O Hub core: canonical model, inventory, orders, routing, storage. No transport here."""
