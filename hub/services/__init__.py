"""Use cases on the database: each public function runs inside one unit of work (one transaction)."""
