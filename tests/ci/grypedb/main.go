// Command grypedb writes a grype vulnerability database (schema v6) with the advisories it reads,
// through grype's own database package, for a scan that must not download the real database.
//
//	grypedb DIR < advisories.json
//
// Input on stdin, JSON: a list of {"id": "GHSA-...", "ecosystem": "python", "package":
// "requests", "constraint": "< 2.32.0", "fixed": "2.32.0", "severity": "critical"}; "fixed"
// empty means no fix yet. Output: DIR/vulnerability.db, for `grype db import`.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	v6 "github.com/anchore/grype/grype/db/v6"
)

type advisory struct {
	ID         string `json:"id"`
	Ecosystem  string `json:"ecosystem"`
	Package    string `json:"package"`
	Constraint string `json:"constraint"`
	Fixed      string `json:"fixed"`
	Severity   string `json:"severity"`
}

func write(dir string, advisories []advisory) error {
	writer, err := v6.NewWriter(v6.Config{DBDirPath: dir})
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	provider := &v6.Provider{ID: "github", Version: "1", Processor: "grypedb", DateCaptured: &now}
	for _, a := range advisories {
		vulnerability := &v6.VulnerabilityHandle{
			Name:     a.ID,
			Status:   v6.VulnerabilityActive,
			Provider: provider,
			BlobValue: &v6.VulnerabilityBlob{
				ID:          a.ID,
				Description: "written by tests/ci/grypedb",
				Severities: []v6.Severity{
					{Scheme: v6.SeveritySchemeCHMLN, Value: a.Severity, Rank: 1},
				},
			},
		}
		if err := writer.AddVulnerabilities(vulnerability); err != nil {
			return err
		}
		fix := &v6.Fix{State: v6.NotFixedStatus}
		if a.Fixed != "" {
			fix = &v6.Fix{Version: a.Fixed, State: v6.FixedStatus}
		}
		affected := &v6.AffectedPackageHandle{
			Vulnerability: vulnerability,
			Package:       &v6.Package{Ecosystem: a.Ecosystem, Name: a.Package},
			BlobValue: &v6.PackageBlob{
				Ranges: []v6.Range{
					{Version: v6.Version{Type: a.Ecosystem, Constraint: a.Constraint}, Fix: fix},
				},
			},
		}
		if err := writer.AddAffectedPackages(affected); err != nil {
			return err
		}
	}
	return writer.Close()
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: grypedb DIR < advisories.json")
		os.Exit(2)
	}
	var advisories []advisory
	if err := json.NewDecoder(os.Stdin).Decode(&advisories); err != nil {
		fmt.Fprintln(os.Stderr, "grypedb: stdin:", err)
		os.Exit(2)
	}
	if err := write(os.Args[1], advisories); err != nil {
		fmt.Fprintln(os.Stderr, "grypedb:", err)
		os.Exit(1)
	}
}
