@cll
Feature: Chronic lymphocytic leukemia after liso-cel failure
  CLL relapsing after liso-cel: the evidence after CAR-T failure is thin, so trials come first when one
  can be reached; a second CD19 CAR-T and transplant are weighed for fit patients.

  Rule: A second CD19 CAR-T can be considered when CD19 is retained and the CAR-T cells are gone

    @second_car_t_infusion @long_term_follow_up
    Scenario: CD19-positive relapse after loss of CAR-T persistence
      Given a 63-year-old with chronic lymphocytic leukemia who relapsed 15 months after liso-cel
      And CD19 is retained on re-biopsy
      And CAR-T cells are no longer detectable
      When postcart assesses the situation
      Then a second CAR-T infusion is to be considered
      And the rationale cites Gauthier 2021
      And long-term follow-up is recommended
      And the rationale cites FDA 2024 boxed warning

  Rule: Trials first, transplant for the fit

    @clinical_trial @allogeneic_hct
    Scenario: A fit patient with a donor and a trial within reach
      Given a 54-year-old with CLL who relapsed 8 months after liso-cel
      And the HCT-CI is 2
      And organ function is adequate for intensive therapy
      And a matched unrelated donor is available
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then a clinical trial is recommended
      And allogeneic transplant is to be considered
