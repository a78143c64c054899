// A seller's metering code, as written for AWS: it takes a JS v3 client.
import { BatchMeterUsageCommand } from "@aws-sdk/client-marketplace-metering";

// BatchMeterUsage of each customer's quantity at hour; resolves to the
// MeteringRecordIds by customer, rejects on a refused record.
export async function reportHour(client, productCode, dimension, quantities, hour = new Date()) {
  let records = Object.entries(quantities).map(([CustomerIdentifier, Quantity]) => ({
    CustomerIdentifier, Dimension: dimension, Quantity, Timestamp: hour,
  }));
  const ids = {};
  while (records.length > 0) {
    const batch = records.slice(0, 25);
    const out = await client.send(new BatchMeterUsageCommand({ ProductCode: productCode, UsageRecords: batch }));
    for (const r of out.Results) {
      if (r.Status !== "Success") throw new Error(`usage of ${r.UsageRecord.CustomerIdentifier}: ${r.Status}`);
      ids[r.UsageRecord.CustomerIdentifier] = r.MeteringRecordId;
    }
    records = records.slice(25).concat(out.UnprocessedRecords ?? []);
  }
  return ids;
}
