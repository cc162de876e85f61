"""Playing the Supplier (and the ACB) against one meter: originator counters, signing,
wrapping, provisioning, sending a Command and checking its answer."""
