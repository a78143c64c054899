package service

// The fingerprint encodings, for fingerprint_test.go.
var (
	Fingerprint             = fingerprint
	MeterRequestFingerprint = meterRequestFingerprint
)
