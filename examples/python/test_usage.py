import time

import pytest
from botocore.exceptions import ClientError

from usage import report_hour


def test_resolve_customer(metering):
    out = metering.resolve_customer(RegistrationToken="buyer-1-token")
    assert out["CustomerIdentifier"] == "buyer-1"
    assert out["ProductCode"] == "myproduct1"


def test_report_hour_is_idempotent(metering):
    hour = int(time.time()) // 3600 * 3600
    first = report_hour(metering, "myproduct1", "api_calls", {"buyer-1": 250}, hour)
    again = report_hour(metering, "myproduct1", "api_calls", {"buyer-1": 250}, hour)
    assert first["buyer-1"] and again == first


def test_unknown_dimension_is_refused(metering):
    with pytest.raises(ClientError) as e:
        report_hour(metering, "myproduct1", "no_such_dimension", {"buyer-1": 1})
    assert e.value.response["Error"]["Code"] == "InvalidUsageDimensionException"


def test_unknown_customer_is_refused(metering):
    with pytest.raises(ClientError) as e:
        report_hour(metering, "myproduct1", "seats", {"not-a-customer": 1})
    assert e.value.response["Error"]["Code"] == "InvalidCustomerIdentifierException"
