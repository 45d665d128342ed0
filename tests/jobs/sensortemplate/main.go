// Command sensortemplate runs a Sensor parameter's dataTemplate the way Argo Events does: Go's
// text/template with Sprig's hermetic functions, over {"Input": <the event's data as JSON>}.
//
// Input on stdin, JSON: {"template": "...", "event": {...}}. Output on stdout: the result.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

type request struct {
	Template string `json:"template"`
	Event    any    `json:"event"`
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	tmpl, err := template.New("param").Funcs(sprig.HermeticTxtFuncMap()).Parse(req.Template)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := tmpl.Execute(os.Stdout, map[string]any{"Input": req.Event}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
