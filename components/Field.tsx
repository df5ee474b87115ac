// A labelled form field with its error next to it (aria-invalid + aria-describedby).
export type FieldProps = {
  name: string;
  label: string;
  type?: "text" | "email" | "password" | "number" | "search";
  value?: string;
  error?: string;
  autocomplete?: string;
  required?: boolean;
  minLength?: number;
  hint?: string;
};

export function Field(
  { name, label, type = "text", value, error, autocomplete, required, minLength, hint }: FieldProps,
) {
  const id = `field-${name}`;
  const described = error ? `${id}-error` : hint ? `${id}-hint` : undefined;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input
        id={id}
        name={name}
        // Preact types each input type separately; the props above fit every type offered here.
        type={type as "text"}
        value={value}
        autocomplete={autocomplete}
        required={required}
        minLength={minLength}
        aria-invalid={error ? "true" : undefined}
        aria-describedby={described}
      />
      {error && <small id={`${id}-error`} class="field-error">{error}</small>}
      {hint && !error && <small id={`${id}-hint`}>{hint}</small>}
    </div>
  );
}
