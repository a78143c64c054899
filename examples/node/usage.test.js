import { MarketplaceMeteringClient, ResolveCustomerCommand } from "@aws-sdk/client-marketplace-metering";
import { describe, expect, inject, test } from "vitest";

import { reportHour } from "./usage.js";

// A client for the mpmeter the global setup started, as the seller of seed.yaml.
const client = new MarketplaceMeteringClient({
  endpoint: inject("mpmeterEndpoint"),
  region: "us-east-1",
  credentials: { accessKeyId: "AKIAMYSELLERKEY00001", secretAccessKey: "my-seller-secret" },
});

describe("metering against mpmeter", () => {
  test("ResolveCustomer", async () => {
    const out = await client.send(new ResolveCustomerCommand({ RegistrationToken: "buyer-1-token" }));
    expect(out.CustomerIdentifier).toBe("buyer-1");
    expect(out.ProductCode).toBe("myproduct1");
  });

  test("reporting an hour twice meters it once", async () => {
    const hour = new Date(Math.floor(Date.now() / 3600e3) * 3600e3);
    const first = await reportHour(client, "myproduct1", "api_calls", { "buyer-1": 250 }, hour);
    const again = await reportHour(client, "myproduct1", "api_calls", { "buyer-1": 250 }, hour);
    expect(first["buyer-1"]).toBeTruthy();
    expect(again).toEqual(first);
  });

  test("an unknown dimension is refused", async () => {
    await expect(reportHour(client, "myproduct1", "no_such_dimension", { "buyer-1": 1 }))
      .rejects.toMatchObject({ name: "InvalidUsageDimensionException" });
  });
});
