// Package deps pins the modules mpmeter's packages are being built on, so
// that go.mod and go.sum stay complete while several packages are written at
// once. It is removed once every module is imported by real code.
package deps

import (
	_ "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	_ "github.com/aws/aws-sdk-go/service/marketplacemetering"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
