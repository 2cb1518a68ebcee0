"""The MQTT part of the test plants."""

MQTT_BODY = """\
mqtt:
  host: 127.0.0.1
  port: {port}
  client_id: {client_id}
  mappings:
    - id: plc-json
      topic: plant/{{site}}/{{device}}/telemetry
      fields:
        p_kw: {{path: power.total_kw}}
        e_imp_kwh: {{path: energy.import_kwh}}
        pf: {{path: pf, min: -1, max: 1}}
        v_l1_v: {{path: v.l1, scale: 0.1, min: 0, max: 1000}}
      timestamp: {{path: ts}}
    - id: single
      topic: meters/{{device}}/{{field}}
      format: value
      fields: {{p_kw: {{scale: 0.001}}, e_imp_kwh: {{}}}}
    - id: batch
      topic: batch/{{device}}
      format: json_array
      fields: {{p_kw: {{}}, e_imp_kwh: {{}}}}
      timestamp: {{path: t, unit: iso}}
    - id: prod
      topic: production/{{device}}
      fields: {{output_t: {{path: tonnes, min: 0, max: 100}}}}
devices:
  - {{id: fan-1, area: util, kind: exhaust_fan, mqtt: {{mapping: plc-json}}, max_kw: 5000}}
  - {{id: comp-1, area: util, kind: compressor, mqtt: {{mapping: single, topic_id: C1}}, max_kw: 5000}}
  - {{id: pump-1, area: util, kind: pump, mqtt: {{mapping: batch}}, max_kw: 5000}}
  - {{id: cast-1, area: cast, kind: production, mqtt: {{mapping: prod}}}}
"""
