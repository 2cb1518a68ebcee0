"""A demo plant: Modbus servers with realistic load profiles, and history back-fill."""
