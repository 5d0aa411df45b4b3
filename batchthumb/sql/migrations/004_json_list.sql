-- A Django library's list stored as JSON text (sorl-thumbnail's thumbnail keys), read
-- defensively: a value that is not a JSON array (a hand-edited or hostile row) reads as
-- NULL instead of failing the statement that merges batchthumb's keys into it.
CREATE OR REPLACE FUNCTION {schema}.json_list(value text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    parsed jsonb;
BEGIN
    parsed := value::jsonb;
    IF jsonb_typeof(parsed) = 'array' THEN
        RETURN parsed;
    END IF;
    RETURN NULL;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;
