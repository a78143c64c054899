package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// parseFlags parses args into fs, filling every flag not given on the
// command line from the environment (MPMETER_<NAME>) and then from the
// --config file, so that flags > environment > file > defaults. Values from
// the environment and the file go through the flag's own parser, so they are
// validated exactly like flags.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string, stderr io.Writer) error {
	return parseFlagsEnv(fs, args, "MPMETER_", getenv, stderr)
}

// parseFlagsEnv is parseFlags reading the variables envPrefix+FLAG_NAME
// (bench reads MPMETER_BENCH_*, so that serve's MPMETER_SEED does not
// configure the benchmark), and naming them so in its errors.
func parseFlagsEnv(fs *flag.FlagSet, args []string, envPrefix string, getenv func(string) string, stderr io.Writer) error {
	configPath := fs.String("config", "", "YAML config file whose keys are flag names (env MPMETER_CONFIG)")
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	envName := func(name string) string {
		return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	}
	if !given["config"] {
		*configPath = getenv(envName("config"))
	}
	var file map[string]any
	if *configPath != "" {
		raw, err := os.ReadFile(*configPath)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := yaml.Unmarshal(raw, &file); err != nil {
			return fmt.Errorf("config file %s: %w", *configPath, err)
		}
		for k := range file {
			if fs.Lookup(k) == nil || k == "config" {
				return fmt.Errorf("config file %s: unknown setting %q", *configPath, k)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || f.Name == "config" {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %v", envName(f.Name), v, e)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if e := f.Value.Set(fmt.Sprint(v)); e != nil {
				err = fmt.Errorf("config file %s: %s: %v", *configPath, f.Name, e)
			}
		}
	})
	return err
}
