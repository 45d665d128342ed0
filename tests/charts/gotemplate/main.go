// Command gotemplate renders Argo CD templates the way Argo CD does, with Go's text/template.
//
// The ApplicationSet controller (applicationset/utils.Render) executes every string of an
// Application template, map keys included, as a Go template with the generator's parameters and
// the ApplicationSet's goTemplateOptions; a templatePatch and the notification templates are
// one template string each. Argo CD adds the Sprig functions, which these templates do not use:
// one that did would fail here with "function not defined".
//
// Input on stdin, JSON: {"options": ["missingkey=error"], "jobs": [{"object": ..., "params": {...}}]}
// Output on stdout, JSON: the rendered objects, in order. A template error exits 1 and names it.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
)

type job struct {
	Object any            `json:"object"`
	Params map[string]any `json:"params"`
}

type request struct {
	Options []string `json:"options"`
	Jobs    []job    `json:"jobs"`
}

func render(text string, params map[string]any, options []string) (string, error) {
	tmpl, err := template.New("").Option(options...).Parse(text)
	if err != nil {
		return "", fmt.Errorf("failed to parse template %s: %w", text, err)
	}
	var out strings.Builder
	if err := tmpl.Execute(&out, params); err != nil {
		return "", fmt.Errorf("failed to execute go template %s: %w", text, err)
	}
	return out.String(), nil
}

func walk(node any, params map[string]any, options []string) (any, error) {
	switch value := node.(type) {
	case string:
		return render(value, params, options)
	case []any:
		items := make([]any, len(value))
		for index, item := range value {
			rendered, err := walk(item, params, options)
			if err != nil {
				return nil, err
			}
			items[index] = rendered
		}
		return items, nil
	case map[string]any:
		fields := make(map[string]any, len(value))
		for key, item := range value {
			renderedKey, err := render(key, params, options)
			if err != nil {
				return nil, err
			}
			rendered, err := walk(item, params, options)
			if err != nil {
				return nil, err
			}
			fields[renderedKey] = rendered
		}
		return fields, nil
	default:
		return value, nil
	}
}

func main() {
	decoder := json.NewDecoder(os.Stdin)
	decoder.UseNumber()
	var input request
	if err := decoder.Decode(&input); err != nil {
		fmt.Fprintln(os.Stderr, "gotemplate: reading the request:", err)
		os.Exit(2)
	}
	results := make([]any, len(input.Jobs))
	for index, current := range input.Jobs {
		rendered, err := walk(current.Object, current.Params, input.Options)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gotemplate:", err)
			os.Exit(1)
		}
		results[index] = rendered
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "gotemplate: writing the result:", err)
		os.Exit(2)
	}
}
