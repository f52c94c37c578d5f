"""The castbench pytest plugin (options, fixtures, parametrisation) is installed with the
package through its ``pytest11`` entry point; nothing else is needed here."""
