package main

import (
	"fmt"
	"io"

	"github.com/groupbridge/groupbridge/media/prompt"
	"github.com/spf13/cobra"
)

// newPrompts is `groupbridge prompts list`: every prompt a set needs, with
// its words, so that a volunteer can record a whole set.
func newPrompts(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "prompts", Short: "Work with the spoken prompts"}
	var lang string
	list := &cobra.Command{
		Use:   "list",
		Short: "Print every prompt name with its words (record each as prompts.dir/<lang>/<name>.wav)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			from := lang
			if !prompt.IsBuiltin(lang) {
				// A language without built-in prompts is recorded from
				// the English words (and speaks numbers the English way).
				from = "en"
				fmt.Fprintf(stdout, "# %s has no built-in prompts: translate these English ones.\n", lang)
			}
			texts, err := prompt.Texts(from)
			if err != nil {
				return err
			}
			for _, t := range texts {
				fmt.Fprintf(stdout, "%s|%s\n", t.Name, t.Text)
			}
			fmt.Fprintf(stdout, "# %s: optional, music while members wait (the built-in one otherwise)\n", prompt.HoldMusic)
			return nil
		},
	}
	list.Flags().StringVar(&lang, "lang", "en", "the set's language (built in: en, es; another code lists the English words)")
	cmd.AddCommand(list)
	return cmd
}
