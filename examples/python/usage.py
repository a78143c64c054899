"""A seller's metering code, as written for AWS: it takes a boto3 client."""

import time


def report_hour(client, product_code, dimension, quantities, hour=None):
    """BatchMeterUsage of each customer's quantity; returns the
    MeteringRecordIds by customer and raises on a refused record."""
    hour = hour if hour is not None else int(time.time()) // 3600 * 3600
    records = [{"CustomerIdentifier": c, "Dimension": dimension, "Quantity": q, "Timestamp": hour}
               for c, q in quantities.items()]
    ids = {}
    while records:
        batch, records = records[:25], records[25:]
        out = client.batch_meter_usage(ProductCode=product_code, UsageRecords=batch)
        for r in out["Results"]:
            customer = r["UsageRecord"]["CustomerIdentifier"]
            if r["Status"] != "Success":
                raise RuntimeError(f"usage of {customer}: {r['Status']}")
            ids[customer] = r["MeteringRecordId"]
        records += out.get("UnprocessedRecords", [])
    return ids
